"""The Python client (``progress_bridge.client.watch``) and ``progress-bridge tail --url`` against
real bridges: every event once, in order, across a bridge killed mid-job; refusals end it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from progress_bridge.client import JobNotWatchable, watch
from progress_bridge.events import (
    JobSnapshot,
    ProcessingCompleted,
    ProcessingProgress,
    ProcessingQueued,
    ProcessingStarted,
    ProgressEvent,
    ZoneCompleted,
    ZoneInfo,
    ZonesDeclared,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.events.policy import COALESCED_TYPES
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeProcess, BridgeServer, bridge_settings, mint, settings_env
from tests.conftest import TIMEOUT

CLI = [sys.executable, "-m", "progress_bridge.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _start(store: EventStore, job_id: str, owner: str = "alice") -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner=owner))
    store.append(ProcessingStarted(job_id=job_id, owner=owner))


async def test_watch_yields_every_event_once_in_order_across_a_killed_bridge(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    _start(store, job_id)
    written: list[ProgressEvent] = []
    bridge = BridgeProcess(settings).start()
    port = bridge.port
    received: list[ProgressEvent] = []
    snapshots: list[JobSnapshot] = []

    async def follow() -> None:
        url = f"ws://127.0.0.1:{port}/ws"
        async for update in watch(url, job_id, token=mint(settings, "alice"), min_delay_s=0.05):
            if isinstance(update, JobSnapshot):
                snapshots.append(update)
            else:
                received.append(update)

    watcher = asyncio.create_task(follow())
    try:
        # Zone events (never dropped) and progress (coalescable) while it watches; the bridge
        # is killed and restarted on the same port midway.
        for n in range(40):
            if n == 20:
                bridge.kill()
                bridge = BridgeProcess(settings, port=port).start()
            if n % 2:
                event: ProgressEvent = ProcessingProgress(job_id=job_id, percent=n)
            else:
                event = ZoneCompleted(
                    job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t"
                )
            written.append(store.append(event))
            await asyncio.sleep(0.01)
        written.append(store.append(ProcessingCompleted(job_id=job_id, owner="alice")))
        await asyncio.wait_for(watcher, TIMEOUT)
    finally:
        watcher.cancel()
        bridge.stop()
    # One snapshot to start from, then every event written after it that may never be dropped,
    # exactly once and in order; progress updates (which coalesce, latest wins) in order too.
    assert len(snapshots) == 1
    start = parse_stream_id(snapshots[0].last_id)
    after = [e for e in written if parse_stream_id(e.id or "") > start]
    kept = [e.id for e in after if e.type not in COALESCED_TYPES]
    got = [e.id for e in received]
    assert [i for i in got if i in kept] == kept
    assert got == sorted(got, key=parse_stream_id) and len(set(got)) == len(got)
    assert set(got) <= {e.id for e in after}
    assert received[-1].type == "processing_completed"


async def test_watch_of_another_users_job_raises_forbidden(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    _start(store, job_id, owner="bob")
    with BridgeServer(settings) as bridge, pytest.raises(JobNotWatchable) as exc:
        async for _ in watch(bridge.ws_url, job_id, token=mint(settings, "alice")):
            pass
    assert exc.value.code == "forbidden"


async def test_watch_of_a_job_that_has_ended_yields_its_snapshot_and_stops(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    # No terminal event follows a snapshot taken after the end: the snapshot is the end.
    settings = bridge_settings(redis_url)
    _start(store, job_id)
    store.append(ProcessingCompleted(job_id=job_id, owner="alice", result_summary="done"))
    with BridgeServer(settings) as bridge:
        updates = [u async for u in watch(bridge.ws_url, job_id, token=mint(settings, "alice"))]
    assert [type(u).__name__ for u in updates] == ["JobSnapshot"]
    assert updates[0].status == "completed"  # type: ignore[union-attr]


def _finish_later(
    store: EventStore, job_id: str, ready: Callable[[], bool] = lambda: True
) -> threading.Thread:
    """The rest of the job, once ``ready()`` (e.g. the follower has subscribed)."""

    def finish() -> None:
        deadline = time.monotonic() + TIMEOUT
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        zones = [ZoneInfo(zone_id=f"z{n}", index=n, page=1) for n in range(4)]
        store.append(ZonesDeclared(job_id=job_id, owner="alice", zones=zones, zones_total=4))
        store.append(ZoneCompleted(job_id=job_id, zone_id="z0", zone_index=0, processing_tool="t"))
        store.append(
            ProcessingProgress(
                job_id=job_id,
                percent=50.0,
                zones_completed=2,
                zones_total=4,
                eta_s=75.0,
                current_operation="Extracting text",
            )
        )
        store.append(ProcessingCompleted(job_id=job_id, owner="alice", result_summary="4 zones"))

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_tail_url_follows_a_job_through_the_bridge_as_json_lines(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    _start(store, job_id)
    with BridgeServer(settings) as bridge:
        hub = bridge.bridge.hub
        timer = _finish_later(store, job_id, lambda: hub is not None and job_id in hub.by_job)
        done = subprocess.run(
            [*CLI, "tail", job_id, "--url", bridge.ws_url, "--token", mint(settings, "alice")],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            cwd=ROOT,
        )
        timer.join()
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert lines[0]["op"] == "snapshot" and lines[0]["snapshot"]["status"] == "started"
        assert [line["type"] for line in lines[1:]][-1] == "processing_completed"
        # Not the user's job: exit 2 with the bridge's reason.
        refused = subprocess.run(
            [*CLI, "tail", job_id, "--url", bridge.ws_url, "--token", mint(settings, "eve")],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            cwd=ROOT,
        )
        assert refused.returncode == 2 and "forbidden" in refused.stderr


def test_tail_in_a_terminal_draws_a_live_progress_line_and_lifecycle_lines(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    _start(store, job_id)
    timer = _finish_later(store, job_id)
    # stdout is a terminal (a pseudo-terminal): the human view, not JSON.
    main, child = pty.openpty()
    env = {**os.environ, **settings_env(settings), "COLUMNS": "120"}
    proc = subprocess.Popen(
        [*CLI, "tail", job_id], stdout=child, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    os.close(child)
    output = b""
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None or output.count(b"completed") == 0:
        assert time.monotonic() < deadline, output
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    proc.wait(TIMEOUT)
    os.close(main)
    timer.join()
    text = output.decode()
    assert proc.returncode == 0
    assert "queued (t)" in text and "started, attempt 1" in text
    assert "50.0%  ETA 1:15  zones 2/4  Extracting text" in text
    assert "completed: 4 zones" in text and "100.0%" in text
    assert "{" not in text  # no JSON
