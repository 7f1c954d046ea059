"""Redis restarted without persistence mid-job: the producer re-states the running job at once.

The progress store is a second real valkey-server (no persistence), stopped and restarted empty
on the same port while a task waits mid-job (the broker and result backend stay on the session
server). The job's state must come back in the new epoch within about a second, and true:
status started, its attempt, owner and document, the declared zones with their states, the
percent — not ``queued``, and not "unknown job" for a page that resumes.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from progress_bridge.capture.producer import capture_for
from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import JobSnapshot, PageInfo, ZoneInfo
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import EmbeddedValkey
from tests.conftest import TIMEOUT
from tests.integration.test_task_lifecycle import wait_for

pytestmark = pytest.mark.slow

ZONES = [ZoneInfo(zone_id=f"z{i}", index=i, page=1 + i // 3, kind="text") for i in range(6)]
PAGES = [PageInfo(number=n, width=595, height=842) for n in (1, 2)]
#: "Within about a second": a heartbeat interval (1 s), plus one quick retry after the failed
#: call on the connection the restart broke, plus scheduling on a loaded machine.
RESTATED_WITHIN_S = 2.5

gates: dict[str, threading.Event] = {}


def make_app(redis_url: str, progress_url: str, **progress: Any) -> Celery:
    app = Celery(f"restate-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        progress_settings=Settings(redis_url=progress_url, **progress),
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        task_default_queue=app.main,
    )

    @app.task(base=ProgressTask, bind=True, name=f"{app.main}.halfway")
    def halfway(self: ProgressTask, gate: str) -> str:
        # Three zones done, the fourth under way, then wait (the test restarts Redis).
        self.declare_zones(ZONES, PAGES)
        for zone in ZONES[:3]:
            self.zone_processing(zone.zone_id, tool="ocr")
            self.zone_completed(zone.zone_id, tool="ocr", confidence=0.9, summary=zone.zone_id)
        self.zone_processing("z3", tool="tables")
        self.set_progress(operation="reading the table on page 2")
        self.progress.flush()
        gates[gate + ":reached"].set()
        assert gates[gate].wait(TIMEOUT)
        for zone in ZONES[3:]:
            if zone.zone_id != "z3":
                self.zone_processing(zone.zone_id, tool="ocr")
            self.zone_completed(zone.zone_id, tool="ocr")
        return "ok"

    return app


@pytest.fixture
def progress_server() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey().start()
    yield server
    server.stop()


@dataclass
class Restart:
    """A job held mid-run while its store restarted empty."""

    result: Any
    old_epoch: str
    reader: EventStore  # on the restarted server
    restarted_at: float
    release: threading.Event  # lets the task run on


@contextlib.contextmanager
def restarted_mid_job(app: Celery, server: EmbeddedValkey, settings: Settings) -> Iterator[Restart]:
    gate = uuid.uuid4().hex
    gates[gate], gates[gate + ":reached"] = threading.Event(), threading.Event()
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        result = app.tasks[f"{app.main}.halfway"].submit(
            owner="vera", document_id="manual.pdf", kwargs={"gate": gate}
        )
        assert gates[gate + ":reached"].wait(TIMEOUT)
        before = EventStore.from_url(server.url, settings)
        snap = before.snapshot(result.id)
        before.close()
        assert snap is not None
        # Restart the store empty on the same port: every key of the job is gone.
        server.stop()
        with EmbeddedValkey(port=server.port) as restarted:
            reader = EventStore.from_url(restarted.url, settings)
            try:
                yield Restart(result, snap.epoch, reader, time.monotonic(), gates[gate])
                gates[gate].set()
                # The job runs on and ends completed in the new epoch (task_success, which
                # writes it, runs after Celery stored the result).
                assert result.get(timeout=TIMEOUT) == "ok"
                wait_for(
                    lambda: reader.history(result.id)[-1].type == "processing_completed",
                    "the job's end in the new epoch",
                )
            finally:
                gates[gate].set()
                reader.close()


def restated(reader: EventStore, job_id: str) -> JobSnapshot | None:
    """The snapshot once the whole re-statement is in (it ends with the progress event, the one
    that brings back the current operation)."""
    snap = reader.snapshot(job_id)
    return snap if snap is not None and snap.current_operation is not None else None


def assert_true_state(snap: JobSnapshot, old_epoch: str) -> None:
    assert snap.epoch != old_epoch
    assert (snap.status, snap.attempt, snap.owner, snap.document_id) == (
        "started",
        1,
        "vera",
        "manual.pdf",
    )
    states = [(z.zone_id, z.status, z.processing_tool) for z in snap.zones]
    assert states == [
        ("z0", "completed", "ocr"),
        ("z1", "completed", "ocr"),
        ("z2", "completed", "ocr"),
        ("z3", "processing", "tables"),
        ("z4", "pending", None),
        ("z5", "pending", None),
    ]
    assert [z.summary for z in snap.zones[:3]] == ["z0", "z1", "z2"]
    assert [p.number for p in snap.pages] == [1, 2]
    assert (snap.percent, snap.zones_completed, snap.current_zone) == (50, 3, "z3")
    assert snap.current_operation == "reading the table on page 2"


def test_the_heartbeat_notices_the_lost_job_and_re_states_it_within_about_a_second(
    redis_url: str, progress_server: EmbeddedValkey, settings: Settings
) -> None:
    app = make_app(redis_url, progress_server.url)
    with restarted_mid_job(app, progress_server, settings) as run:
        # The task writes nothing meanwhile: only its process's heartbeat can notice.
        job_id = run.result.id
        snap = wait_for(lambda: restated(run.reader, job_id), "the job to be re-stated")
        took = time.monotonic() - run.restarted_at
        assert took < RESTATED_WITHIN_S, f"re-stated after {took:.2f} s"
        assert_true_state(snap, run.old_epoch)
        # A page resuming from its old position is told the epoch changed and gets this
        # snapshot (not "unknown job"); the new epoch's history starts with the attempt.
        replay = run.reader.replay(job_id, run.old_epoch, "1-0")
        assert (replay.recovered, replay.reason) == (False, "epoch_changed")
        assert replay.snapshot is not None and replay.snapshot.status == "started"
        history = run.reader.replay(job_id)
        assert history.recovered and history.entries[0].event().type == "processing_started"
        assert capture_for(app).stats.restated == 1


def test_an_append_into_a_new_epoch_re_states_the_job_at_once(
    redis_url: str, progress_server: EmbeddedValkey, settings: Settings
) -> None:
    # Heartbeats every 10 s: here the task's own next write must reveal the loss.
    app = make_app(redis_url, progress_server.url, heartbeat_interval_s=10.0, lease_s=30.0)
    with restarted_mid_job(app, progress_server, settings) as run:
        capture = capture_for(app)
        # The job's next event (zone z3 completing) lands in a new epoch: the job is re-stated
        # at once (by the liveness thread, while the task runs on to its end).
        run.release.set()
        wait_for(lambda: capture.stats.restated == 1, "the re-statement")
        assert run.result.get(timeout=TIMEOUT) == "ok"
        history = wait_for(
            lambda: (
                (h := run.reader.history(run.result.id))[-1].type == "processing_completed" and h
            ),
            "the job's end",
        )
        types = [e.type for e in history]
        assert types[0] == "zone_completed"  # the write that found the new epoch
        restated_at = types.index("processing_started")  # the re-statement
        assert types[restated_at + 1] == "zones_declared"
        assert types.count("processing_started") == 1
        assert types[-1] == "processing_completed"
        snap = run.reader.snapshot(run.result.id)
        assert snap is not None and snap.epoch != run.old_epoch
        assert (snap.status, snap.attempt, snap.owner, snap.document_id, snap.percent) == (
            "completed",
            1,
            "vera",
            "manual.pdf",
            100,
        )
        assert [z.status for z in snap.zones] == ["completed"] * len(ZONES)
