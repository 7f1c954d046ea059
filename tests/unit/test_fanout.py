"""The fan-out fast path of :class:`~progress_bridge.bridge.connection.Connection`, with a fake
socket.

The fake ``send`` behaves like uvicorn's (``websockets-sansio``): it awaits ``writable`` (an
:class:`asyncio.Event`, clear while the transport is paused for flow control), then writes at
once. A writable socket must get its frames from the routing call itself, with no writer-task
wake-up; a paused one hands its half-run send to the writer task, and every frame still
arrives once, in order, when it drains.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from progress_bridge.access import Principal
from progress_bridge.bridge.connection import Connection
from progress_bridge.bridge.core import FeedEntry, Session, SubscribeJob
from progress_bridge.bridge.hub import Hub
from progress_bridge.bridge.metrics import BridgeMetrics
from progress_bridge.config import Settings
from progress_bridge.events.snapshot import JobSnapshot

JOB = "job-fast"


class FakeSocket:
    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.sent: list[str] = []
        self.fail: Exception | None = None
        self.closed: int | None = None

    async def send(self, frame: str | bytes) -> None:
        await self.writable.wait()
        if self.fail is not None:
            raise self.fail
        assert isinstance(frame, str)
        self.sent.append(frame)

    async def close(self, code: int, reason: str) -> None:
        self.closed = code

    def events(self) -> list[str]:
        """Event ids in the order they were written (batches flattened)."""
        out: list[str] = []
        for raw in self.sent:
            frame = json.loads(raw)
            if frame["op"] == "event":
                out.append(frame["event"]["id"])
            elif frame["op"] == "batch":
                out.extend(e["id"] for e in frame["events"])
        return out


def entry(n: int, kind: str = "zone_completed") -> FeedEntry:
    payload = {"type": kind, "job_id": JOB, "ts": 1.0, "zone_index": n}
    return FeedEntry(JOB, f"{1000 + n}-0", "e1", json.dumps(payload))


def ids(first: int, last: int) -> list[str]:
    return [f"{1000 + n}-0" for n in range(first, last + 1)]


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(Settings(), cast(Any, None), cast(Any, None), BridgeMetrics())
    yield hub
    for conn in list(hub.conns.values()):
        conn.writer.cancel()
    await settle()


async def connect(hub: Hub, sock: FakeSocket) -> Connection:
    """A subscribed connection whose hello and ``subscribed`` frames are already written."""
    session = Session(Principal("alice", admin=True))
    conn = Connection(session, sock.send, sock.close, metrics=hub.metrics)
    hub.add(conn)
    await settle()  # the writer writes the hello frame
    session.hold()
    hub.watch_job(conn, JOB)
    session.finish_job(SubscribeJob(JOB), 0.0)
    hub.flush((conn,))
    assert [json.loads(f)["op"] for f in sock.sent] == ["hello", "subscribed"]
    return conn


def metric(hub: Hub, name: str) -> float:
    value = hub.metrics.registry.get_sample_value(name)
    return value or 0.0


async def test_a_writable_socket_gets_every_event_inline_with_no_writer_wakeup(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    woken = conn.wakeups
    frames0 = metric(hub, "progress_bridge_frames_sent_total")
    for n in range(50):
        hub.route([entry(n)])
        assert sock.events() == ids(0, n)  # written during the route call itself
    hub.route([entry(n) for n in range(50, 60)])  # one reader pass: one batch frame
    assert json.loads(sock.sent[-1])["op"] == "batch"
    await settle()
    assert sock.events() == ids(0, 59)
    assert conn.wakeups == woken
    assert conn.session.outbox_depth == 0
    # Metrics are summed per reader pass: every event and frame is counted.
    assert metric(hub, "progress_bridge_events_relayed_total") == 60
    assert metric(hub, "progress_bridge_frames_sent_total") - frames0 == 51
    conn.writer.cancel()


async def test_many_connections_are_written_in_one_pass_without_waking_any(hub: Hub) -> None:
    socks = [FakeSocket() for _ in range(20)]
    conns = [await connect(hub, s) for s in socks]
    woken = [c.wakeups for c in conns]
    for n in range(10):
        hub.route([entry(n)])
    assert all(s.events() == ids(0, 9) for s in socks)
    await settle()
    assert [c.wakeups for c in conns] == woken
    assert metric(hub, "progress_bridge_events_relayed_total") == 200
    for c in conns:
        c.writer.cancel()


async def test_a_paused_socket_hands_over_to_its_writer_and_keeps_order(hub: Hub) -> None:
    slow, fast = FakeSocket(), FakeSocket()
    slow_conn = await connect(hub, slow)
    fast_conn = await connect(hub, fast)
    hub.route([entry(0)])
    slow.writable.clear()  # the transport paused: the next send suspends
    hub.route([entry(1)])
    assert slow_conn.sending_since is not None  # the suspended send went to the writer
    for n in range(2, 30):
        hub.route([entry(n)])  # queued behind it (and coalescing rules apply as before)
        await settle(2)
    # The healthy connection on the same job got everything inline; the slow one only event 0.
    assert fast.events() == ids(0, 29)
    assert slow.events() == ids(0, 0)
    assert slow_conn.session.outbox_depth == 28
    woken = slow_conn.wakeups
    slow.writable.set()  # drained: the writer finishes the send, then the rest, in order
    for _ in range(50):
        await asyncio.sleep(0)
        if slow.events() == ids(0, 29):
            break
    assert slow.events() == ids(0, 29)
    assert slow_conn.wakeups > woken
    assert slow_conn.sending_since is None
    # Writable again: back on the fast path, no more wake-ups.
    await settle()
    woken = slow_conn.wakeups
    hub.route([entry(30)])
    assert slow.events() == ids(0, 30)
    await settle()
    assert slow_conn.wakeups == woken
    assert not slow_conn.done.done() and not fast_conn.done.done()
    for c in (slow_conn, fast_conn):
        c.writer.cancel()


async def test_events_routed_while_the_writer_has_frames_in_flight_wait_their_turn(
    hub: Hub,
) -> None:
    # A replay answer queued and being written by the writer task (which suspends mid-way):
    # live events routed meanwhile must not overtake it.
    sock = FakeSocket()
    conn = await connect(hub, sock)
    session = conn.session
    session.hold()
    session.finish_job(SubscribeJob(JOB, "e1", "999-0"), 0.0)  # a second subscribe answer
    sock.writable.clear()
    conn.wake()  # the writer takes the answer and suspends writing it
    await settle()
    assert conn.sending_since is not None
    hub.route([entry(0)])
    hub.route([entry(1)])
    sock.writable.set()
    for _ in range(50):
        await asyncio.sleep(0)
        if sock.events() == ids(0, 1):
            break
    ops = [json.loads(f)["op"] for f in sock.sent]
    assert ops[:3] == ["hello", "subscribed", "subscribed"]
    assert sock.events() == ids(0, 1)
    conn.writer.cancel()


async def test_a_socket_that_fails_inline_ends_the_connection_quietly(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.fail = OSError("peer gone")
    hub.route([entry(0)])
    await asyncio.wait_for(conn.done, 1)
    assert conn.writer.done() and conn.writer.exception() is None
    hub.route([entry(1)])  # still routed to until removed: no error, nothing written
    assert sock.events() == []


async def test_a_suspended_send_that_then_fails_ends_the_connection_quietly(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.writable.clear()
    hub.route([entry(0)])
    sock.fail = OSError("peer gone")  # raised inside the coroutine once it resumes
    sock.writable.set()
    await asyncio.wait_for(conn.done, 1)
    assert conn.writer.done() and conn.writer.exception() is None
    assert sock.events() == []


async def test_cancelling_the_writer_closes_a_suspended_send(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.writable.clear()
    hub.route([entry(0)])
    await settle()
    conn.writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await conn.writer
    assert conn.done.done()
    sock.writable.set()
    await settle()
    assert sock.events() == []  # the abandoned send did not write later
    assert not sock.writable._waiters  # and left no waiter


async def test_a_decided_close_is_written_by_the_writer_after_a_pending_send(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.writable.clear()
    hub.route([entry(0), entry(1)])  # one batch frame, suspended
    hub.route([entry(2)])
    conn.session.close(4008, "slow consumer: outbox full")
    hub.flush((conn,))  # wakes the writer (closing), writes nothing inline
    sock.writable.set()
    await asyncio.wait_for(conn.done, 1)
    assert sock.events() == ids(0, 1)  # the frame in flight completes; the rest was dropped
    assert sock.closed == 4008


# -- the snapshot kept for first subscribes ----------------------------------------------------


def snap(last: int) -> JobSnapshot:
    return JobSnapshot(job_id=JOB, epoch="e1", last_id=f"{1000 + last}-0", owner="alice")


async def test_a_snapshot_read_is_kept_until_an_entry_of_its_job_is_routed(hub: Hub) -> None:
    assert hub.cached_snapshot(JOB) is None
    mark = hub.reading_snapshot(JOB)
    assert hub.cached_snapshot(JOB) is None  # in flight: nothing to give yet
    hub.read_snapshot(JOB, mark, snap(3))
    assert hub.cached_snapshot(JOB) == snap(3)
    other = FeedEntry("job-other", "2000-0", "e1", json.dumps({"type": "zone_completed"}))
    hub.route([other])
    assert hub.cached_snapshot(JOB) == snap(3)  # another job's entry changes nothing
    hub.route([entry(4)])
    assert hub.cached_snapshot(JOB) is None  # stale now: the next subscribe reads again


async def test_a_snapshot_read_while_an_entry_of_its_job_is_routed_is_not_kept(hub: Hub) -> None:
    mark = hub.reading_snapshot(JOB)
    hub.route([entry(4)])  # routed while the read was in flight: the read may predate it
    hub.read_snapshot(JOB, mark, snap(3))
    assert hub.cached_snapshot(JOB) is None


async def test_a_read_that_predates_a_routed_entry_is_not_kept_after_a_newer_read_starts(
    hub: Hub,
) -> None:
    first = hub.reading_snapshot(JOB)
    hub.route([entry(4)])
    second = hub.reading_snapshot(JOB)  # a later subscriber starts its own read
    hub.read_snapshot(JOB, first, snap(3))  # the first read returns: it may lack entry 4
    assert hub.cached_snapshot(JOB) is None
    hub.read_snapshot(JOB, second, snap(4))
    assert hub.cached_snapshot(JOB) == snap(4)


async def test_reads_started_together_share_one_mark(hub: Hub) -> None:
    first, second = hub.reading_snapshot(JOB), hub.reading_snapshot(JOB)
    assert first is second  # nothing routed between them: either read may be kept
    hub.read_snapshot(JOB, second, snap(3))
    hub.read_snapshot(JOB, first, snap(3))
    assert hub.cached_snapshot(JOB) == snap(3)


async def test_the_snapshot_cache_is_bounded(hub: Hub) -> None:
    from progress_bridge.bridge.hub import SNAPSHOT_CACHE_SIZE

    for n in range(SNAPSHOT_CACHE_SIZE + 10):
        mark = hub.reading_snapshot(f"job-{n}")
        hub.read_snapshot(f"job-{n}", mark, snap(n).model_copy(update={"job_id": f"job-{n}"}))
    assert len(hub.snapshots) == SNAPSHOT_CACHE_SIZE
    assert hub.cached_snapshot("job-0") is None  # the oldest went first
    assert hub.cached_snapshot(f"job-{SNAPSHOT_CACHE_SIZE + 9}") is not None
