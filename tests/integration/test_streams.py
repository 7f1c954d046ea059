"""The event store against a real server: atomic append, ids, epochs, replay, trim, TTL."""

from __future__ import annotations

import threading

import pytest
import redis

from progress_bridge.config import Settings
from progress_bridge.events import (
    ExportStarted,
    PageInfo,
    ProcessingCancelled,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingProgress,
    ProcessingQueued,
    ProcessingStarted,
    ZoneCompleted,
    ZoneInfo,
    ZoneProcessing,
    ZonesDeclared,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.exceptions import DuplicateTerminal, InvalidEvent
from progress_bridge.store import EventStore

#: The store and the bridge run on a standalone server and on a Valkey Cluster.
pytestmark = pytest.mark.redis_modes


def test_append_returns_position_and_updates_history_snapshot_and_feed_together(
    store: EventStore, job_id: str
) -> None:
    owner = f"owner-of-{job_id}"  # unique: the session's server is shared by every test
    queued = store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner=owner))
    started = store.append(ProcessingStarted(job_id=job_id, attempt=1))

    assert queued.id and started.id and queued.epoch == started.epoch
    assert parse_stream_id(started.id) > parse_stream_id(queued.id)
    assert [e.id for e in store.history(job_id)] == [queued.id, started.id]
    snap = store.snapshot(job_id)
    assert snap is not None
    assert (snap.status, snap.owner, snap.last_id, snap.epoch) == (
        "started",
        owner,
        started.id,
        started.epoch,
    )
    feed = store.client.xrange(store.keys.feed_of(job_id))
    mine = [fields for _, fields in feed if fields["j"] == job_id]
    assert [f["i"] for f in mine] == [queued.id, started.id]
    assert store.jobs_of(owner) == [job_id]


def test_zone_state_keeps_declared_shape_after_completion(store: EventStore, job_id: str) -> None:
    zone = ZoneInfo(zone_id="p1-z0", index=0, page=1, kind="table", bbox=(1, 2, 3, 4))
    store.append(
        ZonesDeclared(
            job_id=job_id, zones=[zone], pages=[PageInfo(number=1, width=612, height=792)]
        )
    )
    store.append(ZoneProcessing(job_id=job_id, zone_id="p1-z0", zone_index=0, processing_tool="t"))
    store.append(
        ZoneCompleted(
            job_id=job_id,
            zone_id="p1-z0",
            zone_index=0,
            processing_tool="t",
            confidence=0.5,
            duration_ms=12,
        )
    )
    snap = store.snapshot(job_id)
    assert snap is not None
    (state,) = snap.zones
    assert (state.kind, state.bbox, state.status, state.confidence) == (
        "table",
        (1, 2, 3, 4),
        "completed",
        0.5,
    )
    assert snap.pages == [PageInfo(number=1, width=612, height=792)]


def test_second_terminal_event_is_refused_and_status_stays(store: EventStore, job_id: str) -> None:
    store.append(ProcessingCompleted(job_id=job_id, result_summary="ok"))
    with pytest.raises(DuplicateTerminal) as err:
        store.append(ProcessingFailed(job_id=job_id, error_type="X", error_message="late"))
    assert str(err.value) == (
        f"job {job_id} already ended with processing_completed; processing_failed was not appended"
    )
    with pytest.raises(DuplicateTerminal):  # a stray late lifecycle event is refused too
        store.append(ProcessingStarted(job_id=job_id, attempt=2))
    snap = store.snapshot(job_id)
    assert snap is not None and snap.status == "completed"
    types = [e.type for e in store.history(job_id)]
    assert types == ["processing_completed"]


def test_after_its_end_a_job_takes_only_export_events_and_keeps_its_numbers(
    store: EventStore, job_id: str
) -> None:
    # A job cancelled mid-way, then a worker that has not noticed yet reports on.
    store.append(ProcessingProgress(job_id=job_id, percent=40, current_operation="Extracting p2"))
    end = store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
    late = [
        ProcessingProgress(job_id=job_id, percent=45, current_operation="Extracting p3"),
        ZoneProcessing(job_id=job_id, zone_id="p3-z0", zone_index=9, processing_tool="t"),
        ZoneCompleted(job_id=job_id, zone_id="p3-z0", zone_index=9, processing_tool="t"),
    ]
    for event in late:
        with pytest.raises(DuplicateTerminal) as err:
            store.append(event)
        assert (err.value.existing, err.value.refused) == ("processing_cancelled", event.type)
    # The same in a batch: each late event refused, nothing written.
    assert all(isinstance(r, DuplicateTerminal) for r in store.append_many(late))
    # Its history ends with its end, and its snapshot says where it stopped.
    assert store.history(job_id)[-1].id == end.id
    snap = store.snapshot(job_id)
    assert snap is not None
    assert (snap.status, snap.percent) == ("cancelled", 40)
    # Exports of what it produced still go on.
    started = store.append(ExportStarted(job_id=job_id, export_id="e1", format="json"))
    assert store.history(job_id)[-1].id == started.id


def test_concurrent_appends_from_8_threads_lose_nothing_and_ids_increase(
    redis_url: str, settings: Settings, job_id: str
) -> None:
    # 8 threads x 1,000 events on one job, each thread with its own connection.
    def worker(n: int) -> None:
        own = EventStore.from_url(redis_url, settings)
        for i in range(1_000):
            own.append(ProcessingProgress(job_id=job_id, percent=50, current_operation=f"{n}:{i}"))
        own.client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    history = EventStore.from_url(redis_url, settings).history(job_id)
    assert len(history) == 8_000
    ids = [parse_stream_id(e.id or "") for e in history]
    assert ids == sorted(ids) and len(set(ids)) == 8_000
    per_thread: dict[str, list[int]] = {}
    for e in history:
        assert isinstance(e, ProcessingProgress) and e.current_operation
        n, i = e.current_operation.split(":")
        per_thread.setdefault(n, []).append(int(i))
    assert all(seq == list(range(1_000)) for seq in per_thread.values())


def test_replay_after_position_returns_exactly_the_later_events(
    store: EventStore, job_id: str
) -> None:
    events = [store.append(ProcessingProgress(job_id=job_id, percent=p)) for p in range(10)]
    answer = store.replay(job_id, events[0].epoch, events[3].id)
    assert answer.recovered and answer.reason == "ok"
    assert [e.id for e in answer.entries] == [e.id for e in events[4:]]
    assert store.replay(job_id, events[0].epoch, events[-1].id).entries == []


def test_replay_past_trimmed_history_says_not_recovered_and_gives_snapshot(
    redis_client: redis.Redis, redis_url: str, job_id: str
) -> None:
    small = EventStore(redis_client, Settings(redis_url=redis_url, stream_maxlen=100))
    first = small.append(ProcessingProgress(job_id=job_id, percent=0))
    for p in range(1_000):
        small.append(ProcessingProgress(job_id=job_id, percent=p / 10))
    answer = small.replay(job_id, first.epoch, first.id)
    assert not answer.recovered and answer.reason == "trimmed"
    assert answer.snapshot is not None and answer.snapshot.percent == 99.9
    # A position still inside the kept history recovers.
    kept = answer.entries[5]
    assert small.replay(job_id, first.epoch, kept.id).recovered


def test_replay_with_stale_epoch_after_stream_loss_is_not_trusted(
    store: EventStore, job_id: str
) -> None:
    old = store.append(ProcessingProgress(job_id=job_id, percent=10))
    store.client.delete(store.keys.stream(job_id))  # the stream is lost
    new = store.append(ProcessingProgress(job_id=job_id, percent=20))
    assert new.epoch != old.epoch
    answer = store.replay(job_id, old.epoch, old.id)
    assert (answer.recovered, answer.reason, answer.entries) == (False, "epoch_changed", [])
    assert answer.snapshot is not None and answer.snapshot.epoch == new.epoch


def test_unknown_job_replay_says_so(store: EventStore) -> None:
    answer = store.replay("never-seen", None, None)
    assert (answer.recovered, answer.reason, answer.snapshot) == (False, "unknown_job", None)


def test_invalid_position_is_rejected_with_a_readable_error(store: EventStore, job_id: str) -> None:
    with pytest.raises(InvalidEvent, match="not a stream id: 'banana'"):
        store.replay(job_id, "e", "banana")


def test_ttl_is_idle_ttl_while_running_and_shortens_after_terminal(
    redis_client: redis.Redis, redis_url: str, job_id: str
) -> None:
    s = EventStore(redis_client, Settings(redis_url=redis_url, ttl_after_end_s=30, idle_ttl_s=3600))
    s.append(ProcessingStarted(job_id=job_id))
    assert 3500 < redis_client.ttl(s.keys.stream(job_id)) <= 3600
    s.append(ProcessingCompleted(job_id=job_id))
    for key in (s.keys.stream(job_id), s.keys.snapshot(job_id)):
        assert 0 < redis_client.ttl(key) <= 30


def test_increments_sum_across_writers_and_set_percent(store: EventStore, job_id: str) -> None:
    store.append(ProcessingProgress(job_id=job_id, percent=0), increments={"zones_total": 4})
    out = [
        store.append(
            ProcessingProgress(job_id=job_id, percent=0), increments={"zones_completed": 1}
        )
        for _ in range(3)
    ]
    assert isinstance(out[-1], ProcessingProgress)
    assert (out[-1].zones_completed, out[-1].zones_total, out[-1].percent) == (3, 4, 75)
    snap = store.snapshot(job_id)
    assert snap is not None and (snap.zones_completed, snap.percent) == (3, 75)
    # Without progress_bp the percent is the zones ratio, but 100 only comes with the end.
    done = store.append(
        ProcessingProgress(job_id=job_id, percent=0), increments={"zones_completed": 1}
    )
    assert isinstance(done, ProcessingProgress) and (done.zones_completed, done.percent) == (4, 99)


def test_progress_bp_sets_the_percent_below_100_and_stays_out_of_the_payload(
    store: EventStore, job_id: str, redis_client: redis.Redis
) -> None:
    # Two children with shares 0.3 and 0.7 add basis points of the job; zones grow meanwhile.
    store.append(ProcessingProgress(job_id=job_id, percent=0), increments={"zones_total": 2})
    first = store.append(
        ProcessingProgress(job_id=job_id, percent=0, current_operation="page 1"),
        increments={"zones_completed": 2, "progress_bp": 1500},
    )
    # The percent follows progress_bp, not zones (2/2 would read 100 % here).
    assert isinstance(first, ProcessingProgress)
    assert (first.percent, first.zones_completed, first.zones_total) == (15, 2, 2)
    assert first.current_operation == "page 1"
    # A later event with zone counters only keeps the percent the job's progress_bp says.
    more = store.append(ProcessingProgress(job_id=job_id, percent=0), increments={"zones_total": 5})
    assert isinstance(more, ProcessingProgress) and (more.percent, more.zones_total) == (15, 7)
    # Every share complete (10 000 bp): still 99 until the terminal event.
    last = store.append(
        ProcessingProgress(job_id=job_id, percent=0), increments={"progress_bp": 8500}
    )
    assert isinstance(last, ProcessingProgress) and last.percent == 99
    # progress_bp is in the snapshot hash only: never in a stored payload, not in the snapshot.
    assert all("progress_bp" not in e.model_dump() for e in store.history(job_id))
    assert redis_client.hget(store.keys.snapshot(job_id), "progress_bp") == "10000"
    snap = store.snapshot(job_id)
    assert snap is not None and (snap.percent, snap.zones_completed) == (99, 2)
    store.append(ProcessingCompleted(job_id=job_id))
    snap = store.snapshot(job_id)
    assert snap is not None and snap.percent == 100
