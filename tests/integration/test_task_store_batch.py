"""``EventStore.append_many`` (the batch script the outbox flushes with) behaves exactly like
one ``append`` per event."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from progress_bridge.events import (
    PageInfo,
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
from progress_bridge.exceptions import DuplicateTerminal
from progress_bridge.store import EventStore

#: Batched appends run on a standalone server and on a Valkey Cluster.
pytestmark = pytest.mark.redis_modes


def life(job_id: str) -> list[Any]:
    zone = ZoneInfo(zone_id="z0", index=0, page=1, kind="table")
    return [
        ProcessingQueued(job_id=job_id, task_name="t", owner="olga", document_id="d"),
        ProcessingStarted(job_id=job_id, attempt=1),
        ZonesDeclared(job_id=job_id, zones=[zone], pages=[PageInfo(number=1, width=1, height=1)]),
        ZoneProcessing(job_id=job_id, zone_id="z0", zone_index=0, processing_tool="t"),
        ProcessingProgress(job_id=job_id, percent=40, zones_completed=0, zones_total=1),
        ZoneCompleted(job_id=job_id, zone_id="z0", zone_index=0, processing_tool="t"),
        ProcessingCompleted(job_id=job_id, result_summary="ok"),
        ProcessingFailed(job_id=job_id, error_type="E", error_message="late"),  # refused
        ProcessingStarted(job_id=job_id, attempt=2),  # stray: status stays completed
    ]


def comparable(store: EventStore, job_id: str) -> tuple[Any, list[str]]:
    snap = store.snapshot(job_id)
    assert snap is not None
    data = snap.model_dump(exclude={"job_id", "epoch", "last_id", "created_ts", "updated_ts"})
    return data, [e.type for e in store.history(job_id)]


def test_append_many_matches_one_append_per_event_including_refusals(store: EventStore) -> None:
    one, many = f"job-{uuid.uuid4().hex[:10]}", f"job-{uuid.uuid4().hex[:10]}"
    singles: list[Any] = []
    for event in life(one):
        try:
            singles.append(store.append(event))
        except DuplicateTerminal as exc:
            singles.append(exc)
    batch = store.append_many(life(many))

    assert [type(r).__name__ for r in batch] == [type(r).__name__ for r in singles]
    refused = batch[7]
    assert isinstance(refused, DuplicateTerminal)
    assert str(refused) == (
        f"job {many} already ended with processing_completed; processing_failed was not appended"
    )
    assert comparable(store, many) == comparable(store, one)
    assert store.jobs_of("olga")[:2] == [many, one]
    ttl = store.client.ttl(store.keys.stream(many))
    assert 0 < ttl <= store.settings.ttl_after_end_s


def test_append_many_keeps_each_jobs_order_across_shards(store: EventStore) -> None:
    jobs = [f"job-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    events = [ProcessingProgress(job_id=jobs[i % 20], percent=i // 20) for i in range(20 * 30)]
    results = store.append_many(events)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({store.keys.shard_of(j) for j in jobs}) > 1
    for job in jobs:
        history = store.history(job)
        assert [e.percent for e in history if isinstance(e, ProcessingProgress)] == list(range(30))
        ids = [parse_stream_id(e.id or "") for e in history]
        assert ids == sorted(ids)
