"""The bridge's edges: every auth failure, bad frames, limits, slow consumers, heartbeat and
graceful shutdown — each gets the documented error or close code, and the server stays up."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.events import ProcessingProgress, ProcessingQueued, ZoneCompleted
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.integration.bridge_client import Client, open_client
from tests.waiting import poll as _poll

MAX_FRAME = 2048


@pytest.fixture(scope="module")
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    settings = bridge_settings(
        redis_url,
        bridge_max_frame_bytes=MAX_FRAME,
        bridge_rate_per_s=50,
        bridge_rate_burst=20,
        bridge_rate_strikes=30,
        bridge_max_subscriptions=3,
        bridge_max_connections_per_user=3,
        bridge_outbox_max_frames=300,
        # The slow-consumer test here watches its outbox coalesce and overflow the frame bound;
        # the byte bound (which counts what the socket holds unread: megabytes on loopback)
        # and the age bound have their own tests (test_bridge_slow_consumer.py).
        bridge_outbox_max_bytes=256 * 1024 * 1024,
        bridge_outbox_max_age_s=60,
        bridge_redis_pool_size=2,
    )
    with BridgeServer(settings) as server:
        yield server


def _publish(store: EventStore, job_id: str, owner: str = "alice") -> str:
    event = store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner=owner))
    assert event.id is not None
    return event.id


async def _still_serves(bridge: BridgeServer, store: EventStore, job_id: str) -> None:
    """A fresh client can still connect, subscribe and get its reply."""
    _publish(store, f"{job_id}-ok", owner="carol")
    client = await open_client(bridge.ws_url, mint(bridge.settings, "carol"))
    await client.send({"op": "subscribe", "job_id": f"{job_id}-ok"})
    assert (await client.op("subscribed"))["recovered"] is True
    await client.close()


async def _error(client: Client, frame: str | bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(frame, dict):
        await client.send(frame)
    else:
        await client.ws.send(frame)
    return await client.op("error")


# -- authentication and authorization ---------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="no-token"),
        pytest.param("not-a-jwt", id="malformed"),
        pytest.param("other-secret", id="bad-signature"),
        pytest.param("expired", id="expired"),
    ],
)
async def test_handshake_without_a_valid_token_closes_4001(
    bridge: BridgeServer, token: str | None
) -> None:
    if token == "other-secret":
        other = bridge_settings("redis://127.0.0.1:1", token_secret="x" * 40)
        token = TokenAuthority(other).mint("alice")
    elif token == "expired":
        token = mint(bridge.settings, "alice", ttl_s=-60)
    client = await open_client(bridge.ws_url, token, expect_hello=False)
    assert await client.closed_code() == 4001
    assert client.frames == []  # nothing was said before the close


async def test_token_in_query_string_is_accepted(bridge: BridgeServer) -> None:
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"), query_token=True)
    assert client.hello is not None and client.hello["user"] == "alice"
    await client.close()


async def test_other_users_job_and_room_are_forbidden_admin_and_grants_see_them(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # Bob's job: alice may not watch it, nor bob's room.
    _publish(store, job_id, owner="bob")
    alice = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    err = await _error(alice, {"op": "subscribe", "job_id": job_id, "ref": 7})
    assert (err["code"], err["ref"]) == ("forbidden", 7)
    err = await _error(alice, {"op": "subscribe", "room": "user:bob", "ref": "r"})
    assert (err["code"], err["ref"]) == ("forbidden", "r")
    err = await _error(alice, {"op": "subscribe", "job_id": "job-does-not-exist"})
    assert err["code"] == "not_found"
    await alice.close()
    # A token granting the job, and an admin token, may.
    granted = await open_client(bridge.ws_url, mint(bridge.settings, "alice", jobs=[job_id]))
    await granted.send({"op": "subscribe", "job_id": job_id})
    assert (await granted.op("subscribed"))["snapshot"]["owner"] == "bob"
    await granted.close()
    admin = await open_client(bridge.ws_url, mint(bridge.settings, "root", admin=True))
    await admin.send({"op": "subscribe", "job_id": job_id})
    assert (await admin.op("subscribed"))["recovered"] is True
    await admin.send({"op": "subscribe", "room": "user:bob"})
    assert job_id in [j["job_id"] for j in (await admin.op("subscribed"))["jobs"]]
    await admin.close()


async def test_cross_site_origin_is_refused_and_allowed_or_same_origin_accepted(
    bridge: BridgeServer,
) -> None:
    token = mint(bridge.settings, "alice")
    protocols = [Subprotocol("progress.v1.json"), Subprotocol(f"token.{token}")]
    with pytest.raises(InvalidStatus) as refused:
        await connect(bridge.ws_url, subprotocols=protocols, origin=Origin("http://evil.example"))
    assert refused.value.response.status_code == 403
    for origin in ("http://allowed.example", f"http://127.0.0.1:{bridge.port}"):
        client = await open_client(bridge.ws_url, token, origin=origin)
        assert client.hello is not None
        await client.close()


# -- bad frames --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param("{not json", "bad_json", id="invalid-json"),
        pytest.param(b"\x00\xff\x13garbage", "bad_json", id="binary-garbage"),
        pytest.param('["a", "list"]', "bad_frame", id="not-an-object"),
        pytest.param({"op": "subscribe"}, "bad_frame", id="missing-job-id"),
        pytest.param({"op": "subscribe", "job_id": "a b"}, "bad_frame", id="bad-job-id"),
        pytest.param({"op": "subscribe", "room": "team:x"}, "bad_frame", id="bad-room"),
        pytest.param({"op": "fly"}, "unknown_op", id="unknown-op"),
        pytest.param(
            {"op": "subscribe", "job_id": "j1", "epoch": "e", "last_id": "x-y"},
            "invalid_position",
            id="bad-last-id",
        ),
        pytest.param(
            {"op": "subscribe", "job_id": "j1", "last_id": "1-0"},
            "invalid_position",
            id="last-id-without-epoch",
        ),
    ],
)
async def test_bad_frame_gets_typed_error_and_connection_stays_open(
    bridge: BridgeServer, store: EventStore, job_id: str, frame: Any, code: str
) -> None:
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    err = await _error(client, frame)
    assert err["code"] == code, err
    # The same connection still works.
    _publish(store, job_id)
    await client.send({"op": "subscribe", "job_id": job_id})
    assert (await client.op("subscribed"))["job_id"] == job_id
    await client.close()


async def test_subscribe_the_bridge_cannot_answer_gets_internal_and_connection_stays_open(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # A job whose snapshot is corrupt (not valid JSON in a field).
    _publish(store, job_id)
    store.client.hset(store.keys.snapshot(job_id), "percent", "{corrupt")
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    assert (await _error(client, {"op": "subscribe", "job_id": job_id}))["code"] == "internal"
    # The connection still serves other subscribes.
    _publish(store, f"{job_id}-fine")
    await client.send({"op": "subscribe", "job_id": f"{job_id}-fine"})
    assert (await client.op("subscribed"))["recovered"] is True
    await client.close()


async def test_msgpack_connection_refuses_garbage_with_bad_json(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"), fmt="msgpack")
    assert (await _error(client, b"\xc1\xc1\xc1"))["code"] == "bad_json"
    assert (await _error(client, {"op": "nope"}))["code"] == "unknown_op"
    await client.close()
    await _still_serves(bridge, store, job_id)


async def test_oversize_frame_closes_1009_and_server_stays_up(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    assert client.hello is not None and client.hello["max_frame_bytes"] == MAX_FRAME
    await client.ws.send('{"op":"pong","pad":"' + "x" * (MAX_FRAME + 10) + '"}')
    assert await client.closed_code() == 1009
    await _still_serves(bridge, store, job_id)


async def test_flood_gets_rate_limited_then_closes_4029(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    for _ in range(200):
        try:
            await client.ws.send('{"op":"pong"}')
        except Exception:
            break  # the server closed while we were flooding
    assert (await client.op("error"))["code"] == "rate_limited"
    assert await client.closed_code() == 4029
    await _still_serves(bridge, store, job_id)


async def test_ten_thousand_subscribes_at_once_are_rate_limited_and_closed_4029(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # One connection sends 10,000 subscribes to a job without waiting for any answer.
    _publish(store, job_id)
    reads_before = _snapshot_reads(bridge)
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    frame = json.dumps({"op": "subscribe", "job_id": job_id})
    for _ in range(10_000):
        try:
            await client.ws.send(frame)
        except Exception:
            break  # the server closed while we were flooding
    # A few are answered, then the rest are refused, and the connection ends with 4029.
    assert await client.closed_code() == 4029
    answered = sum(1 for f in client.frames if f.get("op") == "subscribed")
    refused = [f for f in client.frames if f.get("op") == "error"]
    assert 0 < answered <= 2 * bridge.settings.bridge_rate_burst
    assert [f["code"] for f in refused] == ["rate_limited"]
    # The bridge did about as much snapshot work as it sent answers, not 10,000 reads.
    assert _snapshot_reads(bridge) - reads_before <= answered
    await _still_serves(bridge, store, job_id)


def _snapshot_reads(bridge: BridgeServer) -> float:
    reads = bridge.bridge.metrics.snapshot_reads
    return sum(reads.labels(source)._value.get() for source in ("redis", "cache"))


async def test_an_expired_token_closes_the_connection_4001(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # A token valid for two seconds: the connection works, then ends 4001 when it expires
    # (the client is told to come back with a fresh token).
    _publish(store, job_id)
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice", ttl_s=2))
    await client.send({"op": "subscribe", "job_id": job_id})
    assert (await client.op("subscribed"))["recovered"] is True
    assert await client.closed_code() == 4001
    assert client.ws.close_reason == "token expired"


async def test_subscription_and_connection_limits(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # At most 3 subscriptions per connection.
    client = await open_client(bridge.ws_url, mint(bridge.settings, "dave"))
    for n in range(3):
        _publish(store, f"{job_id}-{n}", owner="dave")
        await client.send({"op": "subscribe", "job_id": f"{job_id}-{n}"})
        await client.op("subscribed")
    _publish(store, f"{job_id}-3", owner="dave")
    err = await _error(client, {"op": "subscribe", "job_id": f"{job_id}-3"})
    assert err["code"] == "too_many_subscriptions"
    # Unsubscribing frees a slot.
    await client.send({"op": "unsubscribe", "job_id": f"{job_id}-0", "ref": "u"})
    assert (await client.op("unsubscribed"))["ref"] == "u"
    await client.send({"op": "subscribe", "job_id": f"{job_id}-3"})
    await client.op("subscribed")
    # At most 3 connections per user: the fourth is closed with 4009.
    others = [await open_client(bridge.ws_url, mint(bridge.settings, "dave")) for _ in range(2)]
    extra = await open_client(bridge.ws_url, mint(bridge.settings, "dave"), expect_hello=False)
    assert await extra.closed_code() == 4009
    for c in [client, *others]:
        await c.close()


async def test_burst_of_subscribes_queues_for_redis_connections_instead_of_failing(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # 20 clients subscribe at once through a pool of 2 Redis connections: all are answered.
    _publish(store, job_id, owner="erin")
    clients = [
        await open_client(bridge.ws_url, mint(bridge.settings, f"b{n}", jobs=[job_id]))
        for n in range(20)
    ]
    for client in clients:
        await client.send({"op": "subscribe", "job_id": job_id})
    replies = await asyncio.gather(*(c.op("subscribed") for c in clients))
    assert all(r["recovered"] for r in replies)
    for client in clients:
        await client.close()


# -- slow consumers ----------------------------------------------------------------------------


async def _admin_view(bridge: BridgeServer, user: str) -> list[dict[str, Any]]:
    admin = mint(bridge.settings, "root", admin=True)
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        resp = await http.get(
            "/api/admin/connections", headers={"Authorization": f"Bearer {admin}"}
        )
    return [c for c in resp.json()["connections"] if c["user"] == user]


async def test_slow_consumer_coalesces_progress_then_closes_4008_past_the_bound(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # A client with a tiny receive buffer that stops reading, and a healthy one on the same job.
    _publish(store, job_id, owner="slow")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", bridge.port))
    token = mint(bridge.settings, "slow")
    slow = await open_client(bridge.ws_url, token, sock=sock, max_queue=1, compression=None)
    await slow.send({"op": "subscribe", "job_id": job_id})
    await slow.op("subscribed")
    healthy = await open_client(bridge.ws_url, mint(bridge.settings, "root", admin=True))
    await healthy.send({"op": "subscribe", "job_id": job_id})
    await healthy.op("subscribed")
    pad = "x" * 1500

    # Fill the socket: big zone events until the slow connection's outbox starts to grow.
    async def backed_up() -> bool:
        store.append_many(
            ZoneCompleted(
                job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t", summary=pad
            )
            for n in range(200)
        )
        view = await _admin_view(bridge, "slow")
        return bool(view) and view[0]["outbox_depth"] > 5

    await _poll(backed_up, "the slow client's outbox to grow")
    # Progress updates now coalesce in its outbox instead of piling up.
    store.append_many(ProcessingProgress(job_id=job_id, percent=n / 10) for n in range(400))

    async def coalesced() -> Any:
        view = await _admin_view(bridge, "slow")
        return view and view[0]["coalesced"] >= 300 and view[0]

    state = await _poll(coalesced, "progress updates to coalesce")
    assert state["outbox_depth"] < 300
    # Zone events are never dropped: past the bound the server decides to close with 4008.
    store.append_many(
        ZoneCompleted(job_id=job_id, zone_id=f"y{n}", zone_index=n, processing_tool="t")
        for n in range(400)
    )

    async def closing() -> bool:
        view = await _admin_view(bridge, "slow")
        return not view or view[0]["closing"] == 4008

    await _poll(closing, "the slow client to be closed")
    # Reading again, the client finds the close code; the healthy client got every event.
    assert await slow.closed_code() == 4008
    last = store.snapshot(job_id)
    assert last is not None
    events = await healthy.events_until(job_id, last.last_id)
    keys = [parse_stream_id(e["id"]) for e in events if e["job_id"] == job_id]
    assert keys == sorted(set(keys))  # in order, nothing twice
    zones = [e.id for e in store.history(job_id) if e.type == "zone_completed"]
    assert [e["id"] for e in events if e["type"] == "zone_completed"] == zones  # none dropped
    await healthy.close()
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        metrics = (await http.get("/metrics")).text
    assert "progress_bridge_closed_slow_total 1.0" in metrics
    total = next(
        line for line in metrics.splitlines() if line.startswith("progress_bridge_coalesced_total")
    )
    assert float(total.split()[-1]) >= 300


# -- heartbeat and shutdown --------------------------------------------------------------------


async def test_silent_client_is_closed_4000_after_two_heartbeats(redis_url: str) -> None:
    settings = bridge_settings(redis_url, bridge_heartbeat_s=0.3)
    with BridgeServer(settings) as server:
        client = await open_client(server.ws_url, mint(settings, "alice"))
        assert client.hello is not None and client.hello["heartbeat_s"] == 0.3
        # (Whether a ping came first depends on the sweep timing; pings are unit-tested.)
        assert await client.closed_code() == 4000


async def test_graceful_shutdown_closes_clients_with_1012(redis_url: str) -> None:
    settings = bridge_settings(redis_url)
    server = BridgeServer(settings).start()
    try:
        client = await open_client(server.ws_url, mint(settings, "alice"))
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        assert await client.closed_code() == 1012
        await stopping
    finally:
        server.stop()
