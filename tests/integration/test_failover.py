"""A master killed mid-job, on a Valkey Cluster with replicas and behind Sentinel.

The job's producer (the real capture path: :class:`Capture` and its outage buffer) keeps
writing; the bridge reconnects to the new topology; a client following the job through the
bridge either resumes with nothing lost or is told ``recovered: false`` with a snapshot — and in
the end its state is the store's, with exactly one terminal event (never silently wrong data,
never a second end).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from progress_bridge.capture.producer import Capture
from progress_bridge.client import watch
from progress_bridge.config import Settings
from progress_bridge.events import (
    JobSnapshot,
    ProcessingCompleted,
    ProcessingQueued,
    ProcessingStarted,
    ProgressEvent,
    ZoneCompleted,
    ZoneInfo,
    ZonesDeclared,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.events.policy import TERMINAL_TYPES
from progress_bridge.store import EventStore
from progress_bridge.store.embedded_cluster import EmbeddedCluster, EmbeddedSentinel, Node
from tests.bridge_server import BridgeServer, bridge_settings, mint, register_redis_mode
from tests.conftest import TIMEOUT

pytestmark = pytest.mark.slow

ZONES = 40
KILL_AT = 15
JOB = "job-failover"


def _write_job(
    capture: Capture, kill: Callable[[], None], stop: threading.Event, begun: threading.Event
) -> None:
    """The job, written as a task writes it; ``kill`` runs midway."""
    capture.send(ProcessingQueued(job_id=JOB, task_name="t", owner="alice"))
    begun.set()
    capture.send(ProcessingStarted(job_id=JOB, owner="alice"))
    zones = [ZoneInfo(zone_id=f"z{n}", index=n, page=1) for n in range(ZONES)]
    capture.send(ZonesDeclared(job_id=JOB, owner="alice", zones=zones, zones_total=ZONES))
    for n in range(ZONES):
        if n == KILL_AT:
            kill()
        capture.send(
            ZoneCompleted(
                job_id=JOB, owner="alice", zone_id=f"z{n}", zone_index=n, processing_tool="t"
            )
        )
        stop.wait(0.05)
    capture.send(ProcessingCompleted(job_id=JOB, owner="alice"))
    assert capture.buffer.flush(timeout=3 * TIMEOUT), "the outage buffer never drained"


async def _follow(url: str, token: str) -> tuple[list[JobSnapshot], list[ProgressEvent]]:
    snapshots: list[JobSnapshot] = []
    events: list[ProgressEvent] = []
    async for update in watch(url, JOB, token=token, min_delay_s=0.1, max_delay_s=1.0):
        if isinstance(update, JobSnapshot):
            snapshots.append(update)
        else:
            events.append(update)
    return snapshots, events


def _state(snapshot: JobSnapshot, events: list[ProgressEvent]) -> set[str]:
    """The zones a client shows completed: its last snapshot, then the events after it."""
    done = {z.zone_id for z in snapshot.zones if z.status == "completed"}
    start = parse_stream_id(snapshot.last_id)
    for event in events:
        if event.type == "zone_completed" and parse_stream_id(event.id or "") > start:
            done.add(event.zone_id)  # type: ignore[union-attr]
    return done


async def _run_failover(
    settings: Settings,
    kill: Callable[[], None],
    store: EventStore,
    *,
    lossless: bool = False,
    **bridge: object,
) -> None:
    """Run the job with ``kill`` midway; ``lossless``: nothing may be lost (no data loss is
    involved), so the client must get every event after its first snapshot and no other."""
    capture = Capture(settings)
    stop = threading.Event()
    bridge_cfg = bridge_settings(settings.redis_url or "", bridge_resume_wait_s=3.0, **bridge)
    with BridgeServer(bridge_cfg) as bridge:
        begun = threading.Event()
        writer = threading.Thread(target=_write_job, args=(capture, kill, stop, begun), daemon=True)
        writer.start()
        # The client follows the job from its first events on.
        assert await asyncio.to_thread(begun.wait, TIMEOUT)
        follower = asyncio.create_task(_follow(bridge.ws_url, mint(bridge_cfg, "alice")))
        try:
            snapshots, events = await asyncio.wait_for(follower, 6 * TIMEOUT)
        finally:
            stop.set()
            await asyncio.to_thread(writer.join, 3 * TIMEOUT)
            capture.close()
    # Exactly one end, in the store and on the wire.
    history = store.history(JOB)
    assert [e.type for e in history if e.type in TERMINAL_TYPES] == ["processing_completed"]
    # On the wire: the terminal event — or, when the client had to start again from a snapshot
    # (a new epoch) after the job ended, that snapshot says so and no terminal event follows.
    ends = [e.type for e in events if e.type in TERMINAL_TYPES]
    assert ends == ["processing_completed"] or (ends == [] and snapshots[-1].status == "completed")
    # In order, no duplicate, after each snapshot the client started again from.
    ids = [parse_stream_id(e.id or "") for e in events]
    assert len(set(ids)) == len(ids)
    # And the client shows what the store holds: every zone completed.
    final = store.snapshot(JOB)
    assert final is not None and final.status == "completed"
    last_snapshot = snapshots[-1]
    after = [
        e for e in events if parse_stream_id(e.id or "") > parse_stream_id(last_snapshot.last_id)
    ]
    assert _state(last_snapshot, after) == {
        z.zone_id for z in final.zones if z.status == "completed"
    }
    assert len(_state(last_snapshot, after)) == ZONES


FEEDS = pytest.mark.parametrize("feed_mode", ["stream", "notify"])


@FEEDS
async def test_a_cluster_master_killed_mid_job_loses_nothing_a_client_sees(feed_mode: str) -> None:
    with EmbeddedCluster(masters=3, replicas=1, node_timeout_ms=1000) as cluster:
        register_redis_mode(cluster.url, "cluster")
        settings = Settings(redis_url=cluster.url, redis_mode="cluster", feed_mode=feed_mode)  # type: ignore[arg-type]
        store = EventStore.from_url(cluster.url, settings)
        victim: list[Node] = []

        def kill() -> None:
            # The master serving the job's slot (clients already know the other nodes).
            node = cluster.master_of(store.keys.stream(JOB))
            victim.append(node)
            node.kill()

        await _run_failover(settings, kill, store, feed_mode=feed_mode)
        assert victim and victim[0].proc.poll() is not None
        store.close()


@FEEDS
async def test_a_sentinel_master_killed_mid_job_loses_nothing_a_client_sees(feed_mode: str) -> None:
    with EmbeddedSentinel(down_after_ms=1000) as deployment:
        register_redis_mode(deployment.url, "sentinel")
        settings = Settings(
            redis_url=deployment.url,
            redis_mode="sentinel",
            redis_sentinel_master="progress",
            feed_mode=feed_mode,  # type: ignore[arg-type]
        )
        store = EventStore.from_url(deployment.url, settings)

        def kill() -> None:
            deployment.master.kill()

        await _run_failover(
            settings, kill, store, redis_sentinel_master="progress", feed_mode=feed_mode
        )
        store.close()


@FEEDS
async def test_a_slot_moved_to_another_node_mid_job_loses_and_repeats_nothing(
    feed_mode: str,
) -> None:
    with EmbeddedCluster(masters=3) as cluster:
        register_redis_mode(cluster.url, "cluster")
        settings = Settings(redis_url=cluster.url, redis_mode="cluster", feed_mode=feed_mode)  # type: ignore[arg-type]
        store = EventStore.from_url(cluster.url, settings)

        def reshard() -> None:
            # The job's slot (its stream, snapshot, feed shard...) moves to another master.
            key = store.keys.stream(JOB)
            here = cluster.master_of(key)
            there = next(n for n in cluster.nodes if n.port != here.port)
            cluster.move_slot(key, there)
            assert cluster.master_of(key).port == there.port

        await _run_failover(settings, reshard, store, lossless=True, feed_mode=feed_mode)
        store.close()
