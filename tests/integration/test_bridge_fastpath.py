"""The fan-out fast path through the real stack: uvicorn (``websockets-sansio``), Starlette's
WebSocket and the bridge's ``/ws`` endpoint, with real clients and valkey.

A client that keeps up gets every live event written by the feed reader itself (no task of its
own exists) — as the event's pre-built frame bytes straight to the transport (``DirectWriter``),
compressed once when deflate is negotiated; a client that stops reading pauses the transport,
events wait in its outbox, and once it reads again every event arrives, once, in order.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from progress_bridge.bridge.connection import Connection
from progress_bridge.events import ProcessingQueued, ZoneCompleted
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import open_client


@pytest.fixture(scope="module")
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    with BridgeServer(bridge_settings(redis_url)) as server:
        yield server


def _conn_of(bridge: BridgeServer, user: str) -> Connection:
    hub = bridge.bridge.hub
    assert hub is not None
    (conn,) = [c for c in list(hub.conns.values()) if c.session.principal.user == user]
    return conn


def _zone(job_id: str, n: int, pad: str = "") -> ZoneCompleted:
    return ZoneCompleted(
        job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t", summary=pad
    )


async def test_live_events_to_a_client_that_keeps_up_are_written_by_the_reader_itself(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="fast"))
    client = await open_client(bridge.ws_url, mint(bridge.settings, "fast"))
    await client.send({"op": "subscribe", "job_id": job_id})
    await client.op("subscribed")
    conn = _conn_of(bridge, "fast")
    assert conn.direct is not None
    written = conn.direct.frames
    for n in range(30):  # one at a time: each is its own reader pass
        event = store.append(_zone(job_id, n))
        assert event.id is not None
        await client.events_until(job_id, event.id)
    got = [e["zone_index"] for e in client.events if e["type"] == "zone_completed"]
    assert got == list(range(30))
    # Every frame went out from the reader, inline: one write each, never a task.
    assert conn.direct.frames == written + 30
    assert conn.handoffs == 0 and conn.sending_since is None
    await client.close()


@pytest.mark.parametrize(
    ("fmt", "compression", "deflate_bits"),
    [("json", None, 0), ("msgpack", None, 0), ("json", "deflate", 12)],
)
async def test_live_events_go_out_as_shared_prebuilt_frames(
    bridge: BridgeServer,
    store: EventStore,
    job_id: str,
    fmt: str,
    compression: str | None,
    deflate_bits: int,
) -> None:
    # Plain, or compressed as browsers ask (websockets offers deflate like them): either way
    # one event's frame is built once and written to the transport as is.
    user = f"direct-{fmt}-{compression}"
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner=user))
    client = await open_client(
        bridge.ws_url, mint(bridge.settings, user), fmt=fmt, compression=compression
    )
    if compression:
        (ext,) = client.ws.protocol.extensions
        assert type(ext).__name__ == "PerMessageDeflate"
        assert ext.remote_no_context_takeover  # each server message compressed on its own
    await client.send({"op": "subscribe", "job_id": job_id})
    await client.op("subscribed")
    conn = _conn_of(bridge, user)
    assert conn.direct is not None and conn.direct.deflate_bits == deflate_bits
    written = conn.direct.frames
    for n in range(20):  # one at a time: each a single-entry reader pass, up to 2.3 kB
        event = store.append(_zone(job_id, n, pad="é" * 60 * n))
        assert event.id is not None
        await client.events_until(job_id, event.id)
    # A burst read in one pass goes out as one batch frame, framed on the way.
    store.append_many(_zone(job_id, n) for n in range(20, 60))
    last = store.snapshot(job_id)
    assert last is not None
    await client.events_until(job_id, last.last_id)
    zones = [e for e in client.events if e["type"] == "zone_completed"]
    assert [e["zone_index"] for e in zones] == list(range(60))
    assert zones[19]["summary"] == "é" * 1140
    assert conn.direct.frames >= written + 21  # 20 single frames, then at least one batch
    assert conn.handoffs == 0
    await client.close()


async def test_deflate_with_context_takeover_goes_through_the_asgi_send(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    # uvicorn's own implementation keeps compressor state per connection: nothing to share.
    settings = bridge_settings(redis_url)
    with BridgeServer(settings, ws="websockets-sansio") as server:
        store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="takeover"))
        client = await open_client(server.ws_url, mint(settings, "takeover"))
        (ext,) = client.ws.protocol.extensions
        assert not ext.remote_no_context_takeover
        await client.send({"op": "subscribe", "job_id": job_id})
        await client.op("subscribed")
        assert _conn_of(server, "takeover").direct is None
        event = store.append(_zone(job_id, 0))
        assert event.id is not None
        got = await client.events_until(job_id, event.id)
        assert [e["zone_index"] for e in got if e["type"] == "zone_completed"] == [0]
        await client.close()


async def test_a_stalled_client_gets_every_event_in_order_once_it_reads_again(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    # Bounds well above what this fills (the socket's own buffers hold megabytes on loopback):
    # the client stalls, but is not a slow consumer to close yet.
    settings = bridge_settings(
        redis_url, bridge_outbox_max_bytes=256 * 1024 * 1024, bridge_outbox_max_age_s=60
    )
    with BridgeServer(settings) as bridge:
        await _stall_and_resume(bridge, store, job_id)


async def _stall_and_resume(bridge: BridgeServer, store: EventStore, job_id: str) -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="stall"))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", bridge.port))
    token = mint(bridge.settings, "stall")
    client = await open_client(bridge.ws_url, token, sock=sock, max_queue=1, compression=None)
    await client.send({"op": "subscribe", "job_id": job_id})
    await client.op("subscribed")
    conn = _conn_of(bridge, "stall")
    assert conn.direct is not None
    pad = "x" * 1500
    # The client reads nothing now: fill the socket until the transport pauses and events
    # queue in the outbox (well under the slow-consumer bound of 1 MiB).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    n = 0
    while conn.direct.ready() or conn.session.outbox_depth < 5:
        assert loop.time() < deadline, "the socket never backed up"
        store.append_many(_zone(job_id, n + i, pad) for i in range(20))
        n += 20
        await asyncio.sleep(0.05)
    store.append_many(_zone(job_id, n + i) for i in range(50))
    last = store.snapshot(job_id)
    assert last is not None
    # Reading again: the transport drains, the outbox follows, every event arrives once, in
    # order, without a task.
    events = await client.events_until(job_id, last.last_id)
    keys = [parse_stream_id(e["id"]) for e in events]
    assert keys == sorted(set(keys))
    assert [e["zone_index"] for e in events if e["type"] == "zone_completed"] == list(range(n + 50))
    assert conn.session.close_code is None and not conn.finished
    assert conn.handoffs == 0
    await client.close()
