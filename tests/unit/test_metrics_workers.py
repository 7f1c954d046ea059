"""Under ``serve --workers N`` the gauges a single process reads at scrape time (connections,
outboxes, buffered bytes, full collections) are stored in the shared multiprocess directory
instead, so any worker's ``/metrics`` reports them. ``MULTIPROCESS`` is fixed at import: checked
in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
from progress_bridge.bridge.metrics import GC_STATS, BridgeMetrics

m = BridgeMetrics()
m.sample_connections(lambda: 3)
m.sample_outboxes(lambda: [1, 2], lambda: 99)
m.connections_changed()
GC_STATS.record(0, 5, 0.002)
for line in m.render().decode().splitlines():
    if line.startswith("progress_bridge_") and not line.startswith("#"):
        print(line)
"""


def test_scrape_time_gauges_are_stored_for_the_other_workers(tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    values = dict(line.rsplit(" ", 1) for line in out if "{" not in line)
    assert float(values["progress_bridge_connections"]) == 3
    assert float(values["progress_bridge_outbox_depth"]) == 3
    assert float(values["progress_bridge_outbox_max_depth"]) == 2
    assert float(values["progress_bridge_buffered_bytes"]) == 99
    assert float(values["progress_bridge_gc_full_collections"]) == 1
    assert float(values["progress_bridge_gc_full_freed"]) == 5
    assert float(values["progress_bridge_gc_full_last_pause_seconds"]) == 0.002
