"""The fan-out fast path of :class:`~progress_bridge.bridge.connection.Connection`, with fake
sockets and real asyncio.

ASGI connections (any server but the bridge's own protocol): the fake ``send`` behaves like
uvicorn's (``websockets-sansio``): it awaits ``writable`` (clear while the transport is paused
for flow control), then writes at once. A writable socket must get its frames from the routing
call itself, with no task; a paused one hands its half-run send to a writer task made for it,
every frame still arrives once, in order, and the task ends once caught up.

Direct connections (the bridge's protocol): frames go to a fake transport at once; while it is
paused they wait in the outbox and follow when it drains; the slow-consumer bound counts what
the transport buffers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from websockets.protocol import State

from progress_bridge.access import Principal
from progress_bridge.bridge.connection import Connection
from progress_bridge.bridge.core import (
    ClientOp,
    CloseCode,
    FeedEntry,
    Limits,
    Session,
    SubscribeJob,
)
from progress_bridge.bridge.direct import DirectWriter
from progress_bridge.bridge.hub import Hub
from progress_bridge.bridge.metrics import BridgeMetrics
from progress_bridge.bridge.sinks import AsgiSink
from progress_bridge.config import Settings
from progress_bridge.events.snapshot import JobSnapshot

JOB = "job-fast"


class FakeSocket:
    """An ASGI ``send`` like uvicorn's: waits while the transport is paused."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.sent: list[str] = []
        self.fail: Exception | None = None
        self.closed: int | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        if self.fail is not None:
            raise self.fail
        if message["type"] == "websocket.close":
            self.closed = message["code"]
            return
        self.sent.append(message["text"])

    def events(self) -> list[str]:
        """Event ids in the order they were written (batches flattened)."""
        return event_ids(self.sent)


def event_ids(frames: list[str]) -> list[str]:
    out: list[str] = []
    for raw in frames:
        frame = json.loads(raw)
        if frame["op"] == "event":
            out.append(frame["event"]["id"])
        elif frame["op"] == "batch":
            out.extend(e["id"] for e in frame["events"])
    return out


class FakeTransport:
    """What a direct writer uses of a transport: writes recorded, a settable backlog."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.backlog = 0  # bytes "not taken by the socket yet"
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> None:
        return None

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def abort(self) -> None:
        self.aborted = self.closing = True


class FakeProto:
    """The parts of the bridge's uvicorn protocol a :class:`DirectWriter` uses."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.transport = FakeTransport()
        self.conn = type("Conn", (), {"state": State.OPEN})()
        self.closed: tuple[int, str, float] | None = None
        self.reading = True

    def close_now(self, code: int, reason: str, linger_s: float) -> None:
        self.closed = (code, reason, linger_s)
        self.conn.state = State.CLOSING

    def hold_reading(self, hold: bool) -> None:
        self.reading = not hold

    def frames(self) -> list[str]:
        """The text frames written so far (unmasked, uncompressed server frames)."""
        out, data, pos = [], bytes(self.transport.data), 0
        while pos < len(data):
            n, hdr = data[pos + 1] & 0x7F, 2
            if n == 126:
                n, hdr = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                n, hdr = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            out.append(data[pos + hdr : pos + hdr + n].decode())
            pos += hdr + n
        return out


class FakeHandler:
    """A bridge's side of a connection, without the store."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.metrics = hub.metrics
        self.close_grace_s = 5.0
        self.close_linger_s = 60.0

    async def carry_out(self, conn: Connection, op: ClientOp) -> None:
        raise AssertionError("no subscribe in these tests")

    def observe_ack(self, session: Session, op: Any) -> None:
        return None

    def finished(self, conn: Connection) -> None:
        self.hub.remove(conn)


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
    await settle()


def subscribe(hub: Hub, conn: Connection) -> None:
    session = conn.session
    hub.add(conn)
    conn.flush()  # hello
    session.hold()
    hub.watch_job(conn, JOB)
    session.finish_job(SubscribeJob(JOB), 0.0)
    hub.flush((conn,))


async def connect(hub: Hub, sock: FakeSocket) -> Connection:
    """A subscribed ASGI connection whose hello and ``subscribed`` frames are written."""
    session = Session(Principal("alice", admin=True))
    conn = Connection(session, FakeHandler(hub), sink=AsgiSink(sock.send))
    subscribe(hub, conn)
    assert [json.loads(f)["op"] for f in sock.sent] == ["hello", "subscribed"]
    return conn


def connect_direct(hub: Hub, limits: Limits | None = None) -> tuple[Connection, FakeProto]:
    """A subscribed direct connection whose hello and ``subscribed`` frames are written."""
    proto = FakeProto()
    session = Session(Principal("alice", admin=True), limits=limits)
    conn = Connection(session, FakeHandler(hub), direct=DirectWriter(proto))
    subscribe(hub, conn)
    assert [json.loads(f)["op"] for f in proto.frames()] == ["hello", "subscribed"]
    return conn, proto


def metric(hub: Hub, name: str) -> float:
    value = hub.metrics.registry.get_sample_value(name)
    return value or 0.0


# -- ASGI connections ----------------------------------------------------------------------------


async def test_a_writable_socket_gets_every_event_inline_with_no_task(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    frames0 = metric(hub, "progress_bridge_frames_sent_total")
    for n in range(50):
        hub.route([entry(n)])
        assert sock.events() == ids(0, n)  # written during the route call itself
    hub.route([entry(n) for n in range(50, 60)])  # one reader pass: one batch frame
    assert json.loads(sock.sent[-1])["op"] == "batch"
    await settle()
    assert sock.events() == ids(0, 59)
    assert conn.handoffs == 0 and conn.sending_since is None
    assert conn.session.outbox_depth == 0
    # Metrics are summed per reader pass: every event and frame is counted.
    assert metric(hub, "progress_bridge_events_relayed_total") == 60
    assert metric(hub, "progress_bridge_frames_sent_total") - frames0 == 51


async def test_many_connections_are_written_in_one_pass_without_any_task(hub: Hub) -> None:
    socks = [FakeSocket() for _ in range(20)]
    conns = [await connect(hub, s) for s in socks]
    for n in range(10):
        hub.route([entry(n)])
    assert all(s.events() == ids(0, 9) for s in socks)
    assert all(c.handoffs == 0 for c in conns)
    assert metric(hub, "progress_bridge_events_relayed_total") == 200


async def test_a_paused_socket_hands_over_to_a_writer_that_keeps_order_and_ends(
    hub: Hub,
) -> None:
    slow, fast = FakeSocket(), FakeSocket()
    slow_conn = await connect(hub, slow)
    await connect(hub, fast)
    hub.route([entry(0)])
    slow.writable.clear()  # the transport paused: the next send suspends
    hub.route([entry(1)])
    assert slow_conn.sending_since is not None  # the suspended send went to a writer task
    assert slow_conn.handoffs == 1
    for n in range(2, 30):
        hub.route([entry(n)])  # queued behind it
        await settle(2)
    # The healthy connection on the same job got everything inline; the slow one only event 0.
    assert fast.events() == ids(0, 29)
    assert slow.events() == ids(0, 0)
    assert slow_conn.session.outbox_depth == 28
    slow.writable.set()  # drained: the writer finishes the send, then the rest, in order
    for _ in range(50):
        await asyncio.sleep(0)
        if slow.events() == ids(0, 29):
            break
    assert slow.events() == ids(0, 29)
    assert slow_conn.sending_since is None
    # Caught up: the writer task ended, and the connection is back on the fast path.
    await settle()
    hub.route([entry(30)])
    assert slow.events() == ids(0, 30)
    assert slow_conn.handoffs == 1
    assert not slow_conn.finished


async def test_events_routed_while_a_send_is_in_flight_wait_their_turn(hub: Hub) -> None:
    # A replay answer queued and being written by the writer task (which suspends mid-way):
    # live events routed meanwhile must not overtake it.
    sock = FakeSocket()
    conn = await connect(hub, sock)
    session = conn.session
    session.hold()
    session.finish_job(SubscribeJob(JOB, "e1", "999-0"), 0.0)  # a second subscribe answer
    sock.writable.clear()
    conn.flush()  # the send of the answer suspends: a writer takes it
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


async def test_a_socket_that_fails_inline_is_written_no_more(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.fail = OSError("peer gone")
    hub.route([entry(0)])
    assert conn.broken
    sock.fail = None
    hub.route([entry(1)])  # still routed to until its disconnect: nothing written
    assert sock.events() == []
    conn.on_disconnect()
    assert conn.finished and conn.id not in hub.conns


async def test_a_suspended_send_that_then_fails_ends_the_writer_quietly(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.writable.clear()
    hub.route([entry(0)])
    sock.fail = OSError("peer gone")  # raised inside the coroutine once it resumes
    sock.writable.set()
    for _ in range(50):
        await asyncio.sleep(0)
        if conn.sending_since is None:
            break
    assert conn.broken and conn.sending_since is None
    assert sock.events() == []


async def test_ending_a_connection_reaps_a_writer_stuck_in_a_send(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.writable.clear()
    hub.route([entry(0)])
    await settle()
    await conn.ended()  # the peer left: the stuck writer is cancelled and reaped
    assert conn.finished and conn.sending_since is None
    sock.writable.set()
    await settle()
    assert sock.events() == []  # the abandoned send did not write later
    assert not sock.writable._waiters  # and left no waiter


async def test_a_decided_close_is_sent_after_a_pending_send(hub: Hub) -> None:
    sock = FakeSocket()
    conn = await connect(hub, sock)
    sock.writable.clear()
    hub.route([entry(0), entry(1)])  # one batch frame, suspended
    hub.route([entry(2)])
    conn.session.close(4008, "slow consumer")
    hub.flush((conn,))  # nothing written inline: the writer sends the close after its send
    sock.writable.set()
    for _ in range(50):
        await asyncio.sleep(0)
        if sock.closed is not None:
            break
    assert sock.events() == ids(0, 1)  # the frame in flight completes; the rest was dropped
    assert sock.closed == 4008
    assert metric(hub, "progress_bridge_closed_slow_total") == 1


# -- direct connections -------------------------------------------------------------------------


async def test_a_direct_connection_queues_while_paused_and_writes_in_order_when_drained(
    hub: Hub,
) -> None:
    conn, proto = connect_direct(hub)
    hub.route([entry(0)])
    proto.writable.clear()  # the transport paused (past its high-water mark)
    for n in range(1, 20):
        hub.route([entry(n)])
    assert event_ids(proto.frames()) == ids(0, 0)
    assert conn.session.outbox_depth == 19
    proto.writable.set()
    conn.on_writable()  # what the protocol calls when the transport drains
    assert event_ids(proto.frames()) == ids(0, 19)
    assert conn.session.outbox_depth == 0 and conn.handoffs == 0
    assert metric(hub, "progress_bridge_events_relayed_total") == 20


async def test_unread_bytes_in_the_transport_count_toward_the_slow_consumer_bound(
    hub: Hub,
) -> None:
    limits = Limits(outbox_max_bytes=10_000, outbox_max_age_s=10, heartbeat_s=100)
    conn, proto = connect_direct(hub, limits)
    proto.transport.backlog = 9_000  # the socket took nothing of the last 9 kB
    assert not conn.tick(1.0)
    assert conn.session.close_code is None
    proto.writable.clear()
    for n in range(30):  # ~2 kB more in the outbox: past the bound with the transport's 9 kB
        hub.route([entry(n)])
    assert conn.session.close_code == CloseCode.SLOW_CONSUMER
    assert proto.closed is not None and proto.closed[0] == CloseCode.SLOW_CONSUMER
    assert conn.finished and conn.id not in hub.conns  # out of the hub and its limits at once
    assert metric(hub, "progress_bridge_closed_slow_total") == 1


async def test_a_stalled_transport_closes_4008_by_the_age_of_its_oldest_unread_byte(
    hub: Hub,
) -> None:
    limits = Limits(outbox_max_age_s=5, heartbeat_s=100)
    conn, proto = connect_direct(hub, limits)
    hub.route([entry(0)])
    proto.transport.backlog = 100  # that frame is still in the transport at every sweep
    now = 10.0
    while now < 15.0:
        assert not conn.tick(now), now
        conn.session.receive('{"op":"pong"}', now)  # the client still talks
        now += 0.5
    assert conn.tick(15.5)
    conn.poke(15.5)
    assert proto.closed is not None and proto.closed[0] == CloseCode.SLOW_CONSUMER
    assert "waited" in proto.closed[1]


async def test_a_slow_reader_that_keeps_reading_is_not_closed(hub: Hub) -> None:
    limits = Limits(outbox_max_age_s=2, heartbeat_s=100)
    conn, proto = connect_direct(hub, limits)
    now, read_upto = 10.0, len(proto.transport.data)
    for n in range(40):  # 20 s: a frame each sweep, each read one sweep later
        hub.route([entry(n)])
        written = len(proto.transport.data)
        proto.transport.backlog = written - read_upto
        assert not conn.tick(now), now
        read_upto = written
        conn.session.receive('{"op":"pong"}', now)
        now += 0.5
    assert conn.session.close_code is None


async def test_an_unanswered_protocol_ping_closes_4008_behind_unread_frames_else_1011(
    hub: Hub,
) -> None:
    stuck, proto = connect_direct(hub)
    proto.transport.backlog = 5_000
    stuck.on_keepalive_timeout()
    assert proto.closed is not None and proto.closed[0] == CloseCode.SLOW_CONSUMER
    idle, proto2 = connect_direct(hub)
    idle.on_keepalive_timeout()
    assert proto2.closed is not None and proto2.closed[0] == CloseCode.INTERNAL


# -- the snapshot kept for first subscribes ----------------------------------------------------


def snap(last: int) -> JobSnapshot:
    return JobSnapshot(job_id=JOB, epoch="e1", last_id=f"{1000 + last}-0", owner="alice")


async def test_a_snapshot_read_is_kept_until_an_entry_of_its_job_is_routed(hub: Hub) -> None:
    assert hub.snapshots.cached(JOB) is None
    mark = hub.snapshots.start_read(JOB)
    assert hub.snapshots.cached(JOB) is None  # in flight: nothing to give yet
    hub.snapshots.finish_read(JOB, mark, snap(3))
    assert hub.snapshots.cached(JOB) == snap(3)
    other = FeedEntry("job-other", "2000-0", "e1", json.dumps({"type": "zone_completed"}))
    hub.route([other])
    assert hub.snapshots.cached(JOB) == snap(3)  # another job's entry changes nothing
    hub.route([entry(4)])
    assert hub.snapshots.cached(JOB) is None  # stale now: the next subscribe reads again


async def test_a_snapshot_read_while_an_entry_of_its_job_is_routed_is_not_kept(hub: Hub) -> None:
    mark = hub.snapshots.start_read(JOB)
    hub.route([entry(4)])  # routed while the read was in flight: the read may predate it
    hub.snapshots.finish_read(JOB, mark, snap(3))
    assert hub.snapshots.cached(JOB) is None


async def test_a_read_that_predates_a_routed_entry_is_not_kept_after_a_newer_read_starts(
    hub: Hub,
) -> None:
    first = hub.snapshots.start_read(JOB)
    hub.route([entry(4)])
    second = hub.snapshots.start_read(JOB)  # a later subscriber starts its own read
    hub.snapshots.finish_read(JOB, first, snap(3))  # the first read returns: it may lack entry 4
    assert hub.snapshots.cached(JOB) is None
    hub.snapshots.finish_read(JOB, second, snap(4))
    assert hub.snapshots.cached(JOB) == snap(4)


async def test_reads_started_together_share_one_mark(hub: Hub) -> None:
    first, second = hub.snapshots.start_read(JOB), hub.snapshots.start_read(JOB)
    assert first is second  # nothing routed between them: either read may be kept
    hub.snapshots.finish_read(JOB, second, snap(3))
    hub.snapshots.finish_read(JOB, first, snap(3))
    assert hub.snapshots.cached(JOB) == snap(3)


async def test_the_snapshot_cache_is_bounded(hub: Hub) -> None:
    from progress_bridge.bridge.caches import SNAPSHOT_CACHE_SIZE

    for n in range(SNAPSHOT_CACHE_SIZE + 10):
        job = f"job-{n}"
        mark = hub.snapshots.start_read(job)
        hub.snapshots.finish_read(job, mark, snap(n).model_copy(update={"job_id": job}))
    assert len(hub.snapshots) == SNAPSHOT_CACHE_SIZE
    assert hub.snapshots.cached("job-0") is None  # the oldest went first
    assert hub.snapshots.cached(f"job-{SNAPSHOT_CACHE_SIZE + 9}") is not None
