"""Writes Redis acknowledged, then lost: what a failover to a lagging replica does to a running
job (asynchronous replication). The job's keys go back to an older state — same epoch, an older
``last_id`` — while its worker runs on. The worker's heartbeat notices that the store is behind
what it wrote and re-states the job, so new subscribers get the true state, not a silently
older one.

The failover is simulated on one real valkey-server: the job's keys are ``DUMP``ed mid-job and
``RESTORE``d later, which is exactly the state a promoted replica that missed the last writes
holds for them. (Real failovers of a cluster and of sentinels are in ``test_failover.py``.)
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from progress_bridge.capture.producer import capture_for
from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import ZoneInfo
from progress_bridge.store import EventStore
from tests.conftest import TIMEOUT
from tests.integration.test_task_lifecycle import wait_for

pytestmark = pytest.mark.slow

ZONES = [ZoneInfo(zone_id=f"z{i}", index=i, page=1, kind="text") for i in range(5)]
gates: dict[str, threading.Event] = {}


def make_app(redis_url: str) -> Celery:
    app = Celery(f"lost-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        progress_settings=Settings(redis_url=redis_url),
        broker_connection_retry_on_startup=True,
        task_default_queue=app.main,
    )

    @app.task(base=ProgressTask, bind=True, name=f"{app.main}.steps")
    def steps(self: ProgressTask, gate: str) -> str:
        self.declare_zones(ZONES)
        self.zone_processing("z0", tool="ocr")
        self.zone_completed("z0", tool="ocr")
        self.progress.flush()
        gates[gate + ":early"].set()  # the "replica" copies the keys here
        assert gates[gate + ":copied"].wait(TIMEOUT)
        for zone in ("z1", "z2"):
            self.zone_processing(zone, tool="ocr")
            self.zone_completed(zone, tool="ocr")
        self.zone_processing("z3", tool="tables")
        self.progress.flush()
        gates[gate + ":late"].set()  # the failover happens here
        assert gates[gate].wait(TIMEOUT)
        self.zone_completed("z3", tool="tables")
        self.zone_processing("z4", tool="ocr")
        self.zone_completed("z4", tool="ocr")
        return "ok"

    return app


def _zone_states(store: EventStore, job_id: str) -> list[tuple[str, str]]:
    snap = store.snapshot(job_id)
    assert snap is not None
    return [(z.zone_id, z.status) for z in snap.zones]


def test_writes_lost_by_a_failover_are_noticed_by_the_heartbeat_and_re_stated(
    redis_url: str, store: EventStore
) -> None:
    app = make_app(redis_url)
    gate = uuid.uuid4().hex
    for name in ("", ":early", ":copied", ":late"):
        gates[gate + name] = threading.Event()
    try:
        with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
            result = app.tasks[f"{app.main}.steps"].submit(owner="vera", kwargs={"gate": gate})
            assert gates[gate + ":early"].wait(TIMEOUT)
            job_id = result.id
            keys = [store.keys.stream(job_id), store.keys.snapshot(job_id)]
            copies: dict[str, Any] = {key: store.client.dump(key) for key in keys}
            epoch = store.snapshot(job_id).epoch  # type: ignore[union-attr]
            gates[gate + ":copied"].set()
            assert gates[gate + ":late"].wait(TIMEOUT)
            true_states = _zone_states(store, job_id)
            assert true_states[:4] == [
                ("z0", "completed"),
                ("z1", "completed"),
                ("z2", "completed"),
                ("z3", "processing"),
            ]
            # The failover: the job's keys as the lagging replica has them (same epoch).
            for key, copy in copies.items():
                store.client.restore(key, 0, copy, replace=True)
            assert _zone_states(store, job_id)[1] == ("z1", "pending")
            lost_at = time.monotonic()
            # The worker's heartbeat finds the store behind what it wrote, and re-states.
            wait_for(lambda: _zone_states(store, job_id) == true_states, "the re-statement")
            assert time.monotonic() - lost_at < 2.5
            snap = store.snapshot(job_id)
            assert snap is not None and (snap.epoch, snap.status) == (epoch, "started")
            assert capture_for(app).stats.restated == 1
            gates[gate].set()
            assert result.get(timeout=TIMEOUT) == "ok"
            wait_for(
                lambda: store.history(job_id)[-1].type == "processing_completed", "the job's end"
            )
    finally:
        for name in ("", ":early", ":copied", ":late"):
            gates.pop(gate + name).set()
