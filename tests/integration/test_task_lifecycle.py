"""ProgressTask and the signal handlers with a real in-process worker (threads pool).

Each test publishes real messages through the session's Redis-protocol server and reads the
job's stream back; nothing runs eagerly.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult

from progress_bridge.capture.producer import capture_for
from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import (
    TERMINAL_TYPES,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingProgress,
    ProcessingQueued,
    ProcessingRetrying,
    ProcessingStarted,
    ProgressEvent,
    ZoneCompleted,
    ZoneInfo,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.exceptions import InvalidEvent
from progress_bridge.store import EventStore
from tests.conftest import TIMEOUT
from tests.waiting import wait_for

ZONES = [ZoneInfo(zone_id=f"z{i}", index=i, page=1, kind="text") for i in range(3)]

#: Gates that let a test hold a running task at a known point (threads pool: same process).
gates: dict[str, threading.Event] = {}


def make_app(redis_url: str, progress_url: str | None = None, **conf: Any) -> Celery:
    name = f"test-{uuid.uuid4().hex[:6]}"
    app = Celery(name, set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        progress_settings=Settings(redis_url=progress_url or redis_url, progress_max_rate_hz=20),
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        task_default_queue=name,  # workers of other test apps share the broker
        **conf,
    )
    task = app.task

    @task(base=ProgressTask, bind=True, name=f"{app.main}.walk")
    def walk(self: ProgressTask, calls: int = 3, gate: str | None = None) -> dict[str, Any]:
        self.declare_zones(ZONES)
        for zone in ZONES:
            self.zone_processing(zone.zone_id, tool="ocr")
            for i in range(calls):
                self.set_progress(operation=f"{zone.zone_id} step {i}")
            if gate and zone.index == 0:
                gates[gate + ":reached"].set()
                assert gates[gate].wait(TIMEOUT)
            self.zone_completed(zone.zone_id, tool="ocr", confidence=0.9, duration_ms=5)
        return {"summary": f"{len(ZONES)} zones"}

    @task(base=ProgressTask, bind=True, name=f"{app.main}.fail")
    def fail(self: ProgressTask) -> None:
        self.set_progress(10, operation="reading")
        raise ValueError("page 3 is unreadable")

    @task(base=ProgressTask, bind=True, name=f"{app.main}.flaky", max_retries=2)
    def flaky(self: ProgressTask) -> str:
        self.set_progress(5)
        if self.request.retries < 1:
            raise self.retry(exc=ConnectionError("scanner offline"), countdown=0.05)
        return "ok"

    @task(base=ProgressTask, bind=True, name=f"{app.main}.bad")
    def bad(self: ProgressTask, what: str) -> None:
        self.declare_zones(ZONES[:1])
        if what == "twice":
            self.zone_completed("z0", tool="ocr")
            self.zone_completed("z0", tool="ocr")
        elif what == "unknown":
            self.zone_processing("nope", tool="ocr")

    @task(base=ProgressTask, bind=True, name=f"{app.main}.child")
    def child(self: ProgressTask, n: int) -> int:
        zones = [ZoneInfo(zone_id=f"{self.request.id}-{i}", index=i) for i in range(n)]
        self.declare_zones(zones)
        for zone in zones:
            self.zone_processing(zone.zone_id, tool="t")
            self.zone_completed(zone.zone_id, tool="t")
        return n

    @task(base=ProgressTask, bind=True, name=f"{app.main}.quick")
    def quick(self: ProgressTask, fail: bool = False) -> str:
        self.set_progress(10, operation="first")
        self.set_progress(60, operation="last")  # within the rate limit: coalesced, pending
        if fail:
            raise ValueError("late failure")
        return "done"

    @task(name=f"{app.main}.plain")
    def plain() -> str:
        return "untracked"

    return app


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[Celery]:
    app = make_app(redis_url)
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False):
        yield app


def finished_history(store: EventStore, job_id: str) -> list[ProgressEvent]:
    """The job's events once its terminal event is in (polls with the shared deadline)."""

    def ended() -> list[ProgressEvent] | None:
        events = store.history(job_id)
        return events if any(e.type in TERMINAL_TYPES for e in events) else None

    events: list[ProgressEvent] = wait_for(ended, f"a terminal event of job {job_id}")
    return events


def assert_ids_increase(events: list[ProgressEvent]) -> None:
    ids = [parse_stream_id(e.id or "") for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({e.epoch for e in events}) == 1


def test_success_writes_the_whole_life_in_order_with_increasing_ids(
    app: Celery, store: EventStore
) -> None:
    # Publish with owner and document headers; run 3 zones with many progress calls each.
    result = app.tasks[f"{app.main}.walk"].submit(
        owner="alice", document_id="doc-7", kwargs={"calls": 50}
    )
    assert result.get(timeout=TIMEOUT) == {"summary": "3 zones"}
    events = finished_history(store, result.id)

    # Lifecycle first and last, zones in order, and exactly one terminal event.
    types = [e.type for e in events]
    assert types[:3] == ["processing_queued", "processing_started", "zones_declared"]
    assert types[-1] == "processing_completed" and sum(t in TERMINAL_TYPES for t in types) == 1
    zone_types = [t for t in types if t.startswith("zone_")]
    assert zone_types == ["zone_processing", "zone_completed"] * 3
    assert_ids_increase(events)
    # Owner and document from the publish headers are on every event.
    assert {(e.owner, e.document_id) for e in events} == {("alice", "doc-7")}
    assert store.jobs_of("alice")[0] == result.id
    queued, started, completed = events[0], events[1], events[-1]
    assert isinstance(queued, ProcessingQueued) and queued.task_name == f"{app.main}.walk"
    assert isinstance(started, ProcessingStarted) and started.attempt == 1
    assert isinstance(completed, ProcessingCompleted) and completed.result_summary == "3 zones"
    # 150 progress calls in a few ms coalesce (zone events don't force a write each: the run is
    # far shorter than one 20 Hz interval, so the first call writes and the end writes the last
    # state); the last state before the end is written.
    progress = [e for e in events if isinstance(e, ProcessingProgress)]
    assert 1 <= len(progress) <= 3
    assert (progress[-1].percent, progress[-1].zones_completed, progress[-1].zones_total) == (
        100,
        3,
        3,
    )
    snap = store.snapshot(result.id)
    assert snap is not None
    assert (snap.status, snap.percent, snap.zones_completed, snap.attempt) == (
        "completed",
        100,
        3,
        1,
    )


def test_failure_ends_failed_with_type_and_message_and_no_traceback(
    app: Celery, store: EventStore
) -> None:
    result = app.tasks[f"{app.main}.fail"].submit(owner="bob")
    with pytest.raises(ValueError, match="unreadable"):
        result.get(timeout=TIMEOUT)
    events = finished_history(store, result.id)
    failed = events[-1]
    assert isinstance(failed, ProcessingFailed)
    assert (failed.error_type, failed.error_message, failed.lost) == (
        "ValueError",
        "page 3 is unreadable",
        False,
    )
    assert "Traceback" not in failed.model_dump_json()
    # The pending progress update was flushed before the terminal event.
    assert [e.type for e in events][-2:] == ["processing_progress", "processing_failed"]


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_a_pending_coalesced_update_is_written_before_the_result_is_stored(
    app: Celery, store: EventStore, fail: bool
) -> None:
    # The task's last progress call is coalesced (still pending) when it returns or raises.
    result = app.tasks[f"{app.main}.quick"].submit(kwargs={"fail": fail})
    events = finished_history(store, result.id)
    terminal = "processing_failed" if fail else "processing_completed"

    # Celery keeps the stored result: the pending update's PROGRESS state was written before
    # it, never after (which would leave the job in PROGRESS and AsyncResult never ready).
    wait_for(lambda: AsyncResult(result.id, app=app).ready(), "the stored result")
    time.sleep(0.3)  # a late PROGRESS write would have landed by now
    fresh = AsyncResult(result.id, app=app)
    if fail:
        assert fresh.state == "FAILURE"
        with pytest.raises(ValueError, match="late failure"):
            fresh.get(timeout=TIMEOUT)
    else:
        assert (fresh.state, fresh.get(timeout=TIMEOUT)) == ("SUCCESS", "done")
    # The stream has that update, right before the one terminal event.
    progress = [e for e in events if isinstance(e, ProcessingProgress)]
    assert (progress[-1].percent, progress[-1].current_operation) == (60, "last")
    assert [e.type for e in events][-2:] == ["processing_progress", terminal]


def test_retry_is_retrying_then_a_second_attempt_not_an_end(app: Celery, store: EventStore) -> None:
    result = app.tasks[f"{app.main}.flaky"].submit()
    assert result.get(timeout=TIMEOUT) == "ok"
    events = finished_history(store, result.id)
    lifecycle = [e for e in events if e.type != "processing_progress"]
    assert [e.type for e in lifecycle] == [
        "processing_queued",
        "processing_started",
        "processing_retrying",
        "processing_started",
        "processing_completed",
    ]
    retrying, second = lifecycle[2], lifecycle[3]
    assert isinstance(retrying, ProcessingRetrying) and retrying.attempt == 2
    assert retrying.reason == "ConnectionError: scanner offline"
    assert isinstance(second, ProcessingStarted) and second.attempt == 2
    assert_ids_increase(events)


def test_revoked_job_ends_cancelled(app: Celery, store: EventStore) -> None:
    # Revoke the id first (waiting for the worker's reply), then publish it: the worker
    # refuses the message and the job ends cancelled without having started.
    job_id = f"job-{uuid.uuid4().hex[:12]}"
    replies = app.control.revoke(job_id, reply=True, limit=1, timeout=TIMEOUT)
    assert replies
    app.tasks[f"{app.main}.walk"].apply_async(task_id=job_id)
    events = finished_history(store, job_id)
    assert [e.type for e in events] == ["processing_queued", "processing_cancelled"]


def test_progress_state_and_task_progress_event_show_the_same_numbers(
    app: Celery, store: EventStore
) -> None:
    # Hold the task inside zone 0 and look at Celery's view of it.
    gate = uuid.uuid4().hex
    gates[gate], gates[gate + ":reached"] = threading.Event(), threading.Event()
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    receivers: list[Any] = []

    def listen() -> None:
        with app.connection_for_read() as conn:
            recv = app.events.Receiver(conn, handlers={"task-progress": seen.append})
            recv.on_consume_ready = lambda *_, **__: ready.set()  # its queue is bound now
            receivers.append(recv)
            with contextlib.suppress(OSError):  # socket.timeout if no event for TIMEOUT s
                for _ in recv.itercapture(limit=None, timeout=TIMEOUT, wakeup=False):
                    pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(TIMEOUT)
    result = app.tasks[f"{app.main}.walk"].submit(kwargs={"gate": gate})
    assert gates[gate + ":reached"].wait(TIMEOUT)
    info = wait_for(
        lambda: (
            AsyncResult(result.id, app=app).state == "PROGRESS"
            and AsyncResult(result.id, app=app).info
        ),
        "PROGRESS state",
    )
    assert (info["zones_total"], info["zones_completed"]) == (3, 0)
    assert info["current_zone"] == "z0"
    gates[gate].set()
    result.get(timeout=TIMEOUT)
    wait_for(lambda: any(e.get("uuid") == result.id for e in seen), "a task-progress event")
    receivers[0].should_stop = True  # leaves itercapture within its 1 s poll
    listener.join(TIMEOUT)
    mine = [e for e in seen if e.get("uuid") == result.id]
    assert {"percent", "zones_completed", "zones_total", "eta_s"} <= set(mine[0])
    written = [e for e in store.history(result.id) if isinstance(e, ProcessingProgress)]
    assert {m["percent"] for m in mine} <= {e.percent for e in written}


def test_bad_call_inside_a_task_fails_it_with_a_clear_message(
    app: Celery, store: EventStore
) -> None:
    result = app.tasks[f"{app.main}.bad"].submit(kwargs={"what": "twice"})
    events = finished_history(store, result.id)
    failed = events[-1]
    assert isinstance(failed, ProcessingFailed) and failed.error_type == "InvalidEvent"
    assert failed.error_message == f"zone 'z0' completed twice (job {result.id})"
    # What was written before the bad call stays.
    assert [e.type for e in events if isinstance(e, ZoneCompleted)] == ["zone_completed"]

    result = app.tasks[f"{app.main}.bad"].submit(kwargs={"what": "unknown"})
    failed = finished_history(store, result.id)[-1]
    assert isinstance(failed, ProcessingFailed)
    assert failed.error_message == (
        f"zone 'nope' was not declared (declare_zones first) (job {result.id})"
    )


def test_tasks_without_progress_task_write_nothing(app: Celery, store: EventStore) -> None:
    result = app.tasks[f"{app.main}.plain"].delay()
    assert result.get(timeout=TIMEOUT) == "untracked"
    assert store.replay(result.id).reason == "unknown_job"


def test_canvas_children_report_zones_to_the_parent_job(
    app: Celery, store: EventStore, job_id: str
) -> None:
    # Two children of one user-visible job, published with the parent header.
    child = app.tasks[f"{app.main}.child"]
    results = [child.submit(n, parent=job_id, owner="carol") for n in (2, 3)]
    assert [r.get(timeout=TIMEOUT) for r in results] == [2, 3]
    for r in results:
        finished_history(store, r.id)

    # The parent's stream has every zone and summed counters; each child keeps its lifecycle.
    snap = wait_for(
        lambda: (s := store.snapshot(job_id)) and s.zones_completed == 5 and s,
        "summed zone counters",
    )
    # (All zones done, but 100 % comes with the parent's terminal event only.)
    assert (snap.zones_total, snap.percent) == (5, 99)
    parent_events = store.history(job_id)
    assert sum(isinstance(e, ZoneCompleted) for e in parent_events) == 5
    assert not any(e.type in TERMINAL_TYPES for e in parent_events)
    child_events = store.history(results[0].id)
    assert child_events[0].parent_id == job_id and child_events[-1].type == "processing_completed"
    assert capture_for(app).stats.redis_errors == 0


def test_weighted_children_add_their_share_of_progress_to_the_parent(
    app: Celery, store: EventStore, job_id: str
) -> None:
    # Two children worth 25 % and 75 % of the job; each declares its zones, then runs them.
    child = app.tasks[f"{app.main}.child"]
    first = child.submit(2, parent=job_id, weight=0.25)
    assert first.get(timeout=TIMEOUT) == 2
    finished_history(store, first.id)
    snap = wait_for(lambda: (s := store.snapshot(job_id)) and s.zones_completed == 2 and s, "1st")
    # The first child is done: the job is 25 % done, not 2/2 zones = 100 %.
    assert (snap.percent, snap.zones_completed, snap.zones_total) == (25, 2, 2)
    second = child.submit(4, parent=job_id, weight=0.75)
    assert second.get(timeout=TIMEOUT) == 4
    finished_history(store, second.id)
    snap = wait_for(lambda: (s := store.snapshot(job_id)) and s.zones_completed == 6 and s, "2nd")
    assert (snap.percent, snap.zones_total) == (99, 6)  # 100 % only with the terminal event
    percents = [e.percent for e in store.history(job_id) if isinstance(e, ProcessingProgress)]
    assert percents == sorted(percents)
    # A weight needs a parent, and is a share.
    with pytest.raises(InvalidEvent, match="weight"):
        child.submit(1, parent=job_id, weight=1.5)
    with pytest.raises(InvalidEvent, match="weight"):
        child.submit(1, weight=0.5)


def test_events_a_child_writes_to_its_parents_stream_describe_the_parent(
    app: Celery, store: EventStore, job_id: str
) -> None:
    # The parent job exists with its owner; a child (of another owner) reports to it.
    store.append(ProcessingQueued(job_id=job_id, owner="dave", document_id="doc-9", task_name="j"))
    result = app.tasks[f"{app.main}.child"].submit(2, parent=job_id, owner="erin")
    assert result.get(timeout=TIMEOUT) == 2
    finished_history(store, result.id)
    wait_for(lambda: (s := store.snapshot(job_id)) and s.zones_completed == 2, "the zones")

    # Every event in the parent's stream is about the parent: no child as its parent, no
    # child's owner; its snapshot keeps its own owner and document and has no parent.
    events = store.history(job_id)[1:]
    assert events and {(e.job_id, e.parent_id, e.owner) for e in events} == {(job_id, None, None)}
    assert {e.root_id for e in events} == {None}
    snap = store.snapshot(job_id)
    assert snap is not None
    assert (snap.parent_id, snap.root_id, snap.owner, snap.document_id) == (
        None,
        None,
        "dave",
        "doc-9",
    )
    assert job_id not in store.jobs_of("erin")
    # The child's own stream still names the parent.
    assert store.history(result.id)[0].parent_id == job_id
