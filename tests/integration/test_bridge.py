"""The bridge end to end: real uvicorn on loopback, real ``websockets`` clients, real valkey.

Subscribe and live delivery, replay across reconnects with no gap and no duplicate, trimmed
history and epoch changes (``recovered: false`` with a snapshot), REST snapshot then subscribe,
rooms, wire formats. Auth, limits and shutdown live in ``test_bridge_limits.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
import redis

from progress_bridge.bridge.core.asyncapi import asyncapi_document
from progress_bridge.events import (
    ProcessingCompleted,
    ProcessingProgress,
    ProcessingQueued,
    ProcessingStarted,
    ZoneCompleted,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.integration.bridge_client import Client, open_client
from tests.waiting import poll

#: The store and the bridge run on a standalone server and on a Valkey Cluster.
pytestmark = [pytest.mark.redis_modes, pytest.mark.feed_modes]


@pytest.fixture(scope="module")
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    with BridgeServer(bridge_settings(redis_url)) as server:
        yield server


@pytest.fixture
def alice(bridge: BridgeServer) -> str:
    return mint(bridge.settings, "alice")


def _publish(store: EventStore, job_id: str, owner: str = "alice", doc: str | None = None) -> str:
    """Append a queued event (which records the owner); return its id."""
    event = store.append(
        ProcessingQueued(job_id=job_id, task_name="demo", owner=owner, document_id=doc)
    )
    assert event.id is not None
    return event.id


def _zone(store: EventStore, job_id: str, n: int) -> str:
    event = store.append(
        ZoneCompleted(job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t")
    )
    assert event.id is not None
    return event.id


def _append_zones_meanwhile(
    store: EventStore, job_id: str, count: int
) -> tuple[threading.Thread, list[str]]:
    """A thread appending ``count`` zone events now; the ids it appended so far, in order."""
    appended: list[str] = []
    thread = threading.Thread(
        target=lambda: appended.extend(_zone(store, job_id, n) for n in range(count))
    )
    thread.start()
    return thread, appended


def _ids(events: list[dict[str, object]], job_id: str) -> list[str]:
    return [str(e["id"]) for e in events if e["job_id"] == job_id]


async def test_subscribe_gets_snapshot_then_live_events(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # Publish, connect, subscribe without a position: the reply carries the snapshot.
    queued_id = _publish(store, job_id)
    client = await open_client(bridge.ws_url, alice)
    assert client.hello is not None
    assert (client.hello["protocol"], client.hello["user"]) == (1, "alice")
    await client.send({"op": "subscribe", "job_id": job_id, "ref": "s1"})
    reply = await client.op("subscribed")
    assert (reply["ref"], reply["job_id"], reply["recovered"], reply["reason"]) == (
        "s1",
        job_id,
        True,
        "ok",
    )
    assert reply["snapshot"]["last_id"] == queued_id
    assert reply["snapshot"]["owner"] == "alice"
    # Live: events appended now arrive in order with their positions.
    started = store.append(ProcessingStarted(job_id=job_id))
    done = store.append(ProcessingCompleted(job_id=job_id))
    assert done.id is not None
    events = await client.events_until(job_id, done.id)
    assert _ids(events, job_id) == [started.id, done.id]
    assert events[0]["epoch"] == reply["epoch"] == started.epoch
    assert events[-1]["type"] == "processing_completed"
    await client.close()


async def test_reconnect_with_last_id_replays_only_missed_events(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # Connect and follow the job for a while.
    _publish(store, job_id)
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "job_id": job_id})
    epoch = (await client.op("subscribed"))["epoch"]
    seen = [_zone(store, job_id, n) for n in range(3)]
    got = _ids(await client.events_until(job_id, seen[-1]), job_id)
    assert got == seen
    # Drop the socket; events keep coming while the client is away.
    await client.close()
    missed = [_zone(store, job_id, n) for n in range(3, 10)]
    # Reconnect with the last rendered position: exactly the missed events, then live ones.
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": got[-1]})
    reply = await client.op("subscribed")
    assert (reply["recovered"], reply["reason"], reply["snapshot"]) == (True, "ok", None)
    live = _zone(store, job_id, 10)
    events = await client.events_until(job_id, live)
    assert _ids(events, job_id) == [*missed, live]
    await client.close()


async def test_subscribe_during_heavy_appends_has_no_gap_and_no_duplicate(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # A writer thread appends 300 events while the client subscribes from the first one.
    first = _publish(store, job_id)
    epoch = store.snapshot(job_id).epoch  # type: ignore[union-attr]
    client = await open_client(bridge.ws_url, alice)
    thread, appended = _append_zones_meanwhile(store, job_id, 300)
    await client.send({"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": first})
    assert (await client.op("subscribed"))["recovered"] is True
    thread.join()
    events = await client.events_until(job_id, appended[-1])
    # Every event after the position, once, in order — whether replayed or live.
    assert _ids(events, job_id) == appended
    await client.close()


async def test_first_subscribes_during_appends_each_get_a_snapshot_then_the_rest_once(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # Clients subscribe without a position, one after another, while a writer appends: some
    # get the snapshot from Redis, some the hub's cached copy; either way each then gets every
    # later event once, in order.
    _publish(store, job_id)
    thread, appended = _append_zones_meanwhile(store, job_id, 300)
    followers: list[tuple[Client, str]] = []
    for _ in range(12):
        client = await open_client(bridge.ws_url, alice)
        await client.send({"op": "subscribe", "job_id": job_id})
        followers.append((client, (await client.op("subscribed"))["snapshot"]["last_id"]))
    thread.join()
    for client, since in followers:
        after = [i for i in appended if parse_stream_id(i) > parse_stream_id(since)]
        if after:  # (a follower that subscribed after the last append has nothing to wait for)
            await client.events_until(job_id, appended[-1])
        assert _ids(client.events, job_id) == after
        await client.close()
    # Quiet now: one read, then the same snapshot from the hub for the next subscribers (while
    # the job is watched: a bridge on per-job notifications stops hearing a job nobody watches,
    # and forgets its copy then).
    keeper = await open_client(bridge.ws_url, alice)
    await keeper.send({"op": "subscribe", "job_id": job_id})
    await keeper.op("subscribed")
    reads = bridge.bridge.metrics.registry.get_sample_value
    cached0 = reads("progress_bridge_snapshot_reads_total", {"source": "cache"}) or 0.0
    answers = []
    for _ in range(3):
        client = await open_client(bridge.ws_url, alice)
        await client.send({"op": "subscribe", "job_id": job_id})
        answers.append((await client.op("subscribed"))["snapshot"])
        await client.close()
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["last_id"] == appended[-1]  # read after the last append: not stale
    cached = reads("progress_bridge_snapshot_reads_total", {"source": "cache"}) or 0.0
    assert cached - cached0 >= 2
    await keeper.close()


async def test_a_snapshot_kept_for_first_subscribes_is_not_served_after_the_job_went_unwatched(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # The hub keeps a job's snapshot for the next first subscribe; with per-job notifications
    # the bridge stops hearing a job nobody watches, so that copy must go with the last watcher.
    _publish(store, job_id)
    first = await open_client(bridge.ws_url, alice)
    await first.send({"op": "subscribe", "job_id": job_id})
    await first.op("subscribed")
    await first.close()
    await wait_until_unwatched(bridge, job_id)
    newer = [_zone(store, job_id, n) for n in range(3)]  # appended while nobody watches
    second = await open_client(bridge.ws_url, alice)
    await second.send({"op": "subscribe", "job_id": job_id})
    assert (await second.op("subscribed"))["snapshot"]["last_id"] == newer[-1]
    live = _zone(store, job_id, 3)
    assert _ids(await second.events_until(job_id, live), job_id) == [live]
    await second.close()


async def wait_until_unwatched(bridge: BridgeServer, job_id: str) -> None:
    hub = bridge.bridge.hub
    assert hub is not None
    await poll(lambda: job_id not in hub.by_job, "the bridge to drop the closed subscriber")


async def test_trimmed_history_answers_recovered_false_with_snapshot(
    bridge: BridgeServer,
    alice: str,
    store: EventStore,
    redis_client: redis.Redis,
    job_id: str,
) -> None:
    # Events, then the history is trimmed past the client's position.
    first = _publish(store, job_id)
    epoch = store.snapshot(job_id).epoch  # type: ignore[union-attr]
    ids = [_zone(store, job_id, n) for n in range(5)]
    redis_client.xtrim(store.keys.stream(job_id), maxlen=2, approximate=False)
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": first})
    reply = await client.op("subscribed")
    # Told plainly, and given the snapshot; what follows is after the snapshot only.
    assert (reply["recovered"], reply["reason"]) == (False, "trimmed")
    assert reply["snapshot"]["last_id"] == ids[-1]
    assert reply["snapshot"]["epoch"] == epoch
    live = _zone(store, job_id, 5)
    assert _ids(await client.events_until(job_id, live), job_id) == [live]
    await client.close()


@pytest.mark.parametrize(
    "last_id",
    [
        pytest.param("18446744073709551615-18446744073709551615", id="greatest-id"),
        pytest.param("99999999999999-0", id="future-id"),
    ],
)
async def test_a_position_past_the_stream_answers_recovered_false_ahead_with_snapshot(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str, last_id: str
) -> None:
    # A position newer than anything written (a bug, or a stream recreated at an older time):
    # not "unavailable" (which the client would retry forever) but the snapshot to restart from.
    newest = _publish(store, job_id)
    epoch = store.snapshot(job_id).epoch  # type: ignore[union-attr]
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": last_id})
    reply = await client.op("subscribed")
    assert (reply["recovered"], reply["reason"]) == (False, "ahead")
    assert reply["snapshot"]["last_id"] == newest
    await client.close()


async def test_epoch_change_answers_recovered_false_with_new_snapshot(
    bridge: BridgeServer,
    alice: str,
    store: EventStore,
    redis_client: redis.Redis,
    job_id: str,
) -> None:
    # The job's stream is lost and recreated: a new epoch.
    first = _publish(store, job_id)
    old_epoch = store.snapshot(job_id).epoch  # type: ignore[union-attr]
    redis_client.delete(store.keys.stream(job_id))
    again = store.append(ProcessingStarted(job_id=job_id))
    assert again.epoch != old_epoch
    # A client resuming from the old epoch is told so and gets the new snapshot.
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "job_id": job_id, "epoch": old_epoch, "last_id": first})
    reply = await client.op("subscribed")
    assert (reply["recovered"], reply["reason"], reply["epoch"]) == (
        False,
        "epoch_changed",
        again.epoch,
    )
    assert (reply["snapshot"]["epoch"], reply["snapshot"]["last_id"]) == (again.epoch, again.id)
    await client.close()


async def test_rest_snapshot_then_subscribe_since_its_position_misses_nothing(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # Load the job over HTTP.
    _publish(store, job_id)
    store.append(ProcessingStarted(job_id=job_id))
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        resp = await http.get(f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {alice}"})
    assert resp.status_code == 200
    snap = resp.json()
    # Something happens between the page load and the subscribe.
    between = store.append(ProcessingProgress(job_id=job_id, percent=10))
    client = await open_client(bridge.ws_url, alice)
    await client.send(
        {"op": "subscribe", "job_id": job_id, "epoch": snap["epoch"], "last_id": snap["last_id"]}
    )
    assert (await client.op("subscribed"))["recovered"] is True
    assert between.id is not None
    assert _ids(await client.events_until(job_id, between.id), job_id) == [between.id]
    await client.close()


async def test_rest_snapshot_requires_token_and_ownership(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    _publish(store, job_id, owner="bob")
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        assert (await http.get(f"/api/jobs/{job_id}")).status_code == 401
        auth = {"Authorization": f"Bearer {alice}"}
        assert (await http.get(f"/api/jobs/{job_id}", headers=auth)).status_code == 403
        assert (await http.get("/api/jobs/job-nope", headers=auth)).status_code == 404


async def test_user_room_delivers_every_job_of_the_user_once(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    # An existing job is listed in the reply; a new job's events arrive live.
    _publish(store, job_id)
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "room": "user:alice", "ref": "r"})
    reply = await client.op("subscribed")
    assert reply["room"] == "user:alice"
    assert job_id in [j["job_id"] for j in reply["jobs"]]
    other_job = f"{job_id}-b"
    queued = _publish(store, other_job)
    bobs = f"{job_id}-bob"
    _publish(store, bobs, owner="bob")
    # Also subscribed by id: the event must still come once.
    await client.send({"op": "subscribe", "job_id": job_id})
    await client.op("subscribed")
    zone = _zone(store, job_id, 0)
    _zone(store, bobs, 0)
    last = _zone(store, other_job, 0)
    events = await client.events_until(other_job, last)
    assert _ids(events, other_job) == [queued, last]
    assert _ids(events, job_id) == [zone]
    assert _ids(events, bobs) == []
    await client.close()


async def test_document_room_filters_jobs_the_user_may_not_see(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    doc = f"doc-{job_id}"
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "room": f"document:{doc}"})
    assert (await client.op("subscribed"))["jobs"] == []
    _publish(store, f"{job_id}-bob", owner="bob", doc=doc)
    mine = _publish(store, job_id, doc=doc)
    events = await client.events_until(job_id, mine)
    assert [e["job_id"] for e in events] == [job_id]
    await client.close()


async def test_msgpack_subprotocol_is_negotiated_and_carries_the_same_maps(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    _publish(store, job_id)
    client = await open_client(bridge.ws_url, alice, fmt="msgpack")
    assert client.ws.subprotocol == "progress.v1.msgpack"
    await client.send({"op": "subscribe", "job_id": job_id})
    assert (await client.op("subscribed"))["recovered"] is True
    ids = [_zone(store, job_id, n) for n in range(3)]
    events = await client.events_until(job_id, ids[-1])
    assert _ids(events, job_id) == ids
    assert events[0]["type"] == "zone_completed"
    await client.close()


async def test_permessage_deflate_is_negotiated_when_offered(
    bridge: BridgeServer, alice: str
) -> None:
    client = await open_client(bridge.ws_url, alice)  # websockets offers deflate by default
    assert client.ws.subprotocol == "progress.v1.json"
    assert [type(e).__name__ for e in client.ws.protocol.extensions] == ["PerMessageDeflate"]
    await client.close()
    plain = await open_client(bridge.ws_url, alice, compression=None)
    assert plain.ws.protocol.extensions == []
    await plain.close()


async def test_permessage_deflate_can_be_turned_off(redis_url: str) -> None:
    settings = bridge_settings(redis_url, bridge_ws_deflate=False)
    with BridgeServer(settings) as server:
        client = await open_client(server.ws_url, mint(settings, "alice"))
        assert client.ws.protocol.extensions == []
        await client.close()


async def test_ack_and_live_connection_are_visible_to_admin_and_metrics(
    bridge: BridgeServer, alice: str, store: EventStore, job_id: str
) -> None:
    first = _publish(store, job_id)
    client = await open_client(bridge.ws_url, alice)
    await client.send({"op": "subscribe", "job_id": job_id})
    await client.op("subscribed")
    await client.send({"op": "ack", "job_id": job_id, "id": first})
    admin = mint(bridge.settings, "root", admin=True)
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        auth = {"Authorization": f"Bearer {alice}"}
        assert (await http.get("/api/admin/connections", headers=auth)).status_code == 403
        mine = []
        for _ in range(200):  # poll until the ack is processed (bounded)
            resp = await http.get(
                "/api/admin/connections", headers={"Authorization": f"Bearer {admin}"}
            )
            assert resp.status_code == 200
            mine = [c for c in resp.json()["connections"] if job_id in c["jobs"]]
            if mine and mine[0]["acks"].get(job_id) == first:
                break
        assert mine and mine[0]["user"] == "alice" and mine[0]["acks"] == {job_id: first}
        metrics = (await http.get("/metrics")).text
        assert "progress_bridge_connections " in metrics
        assert "progress_bridge_events_relayed_total" in metrics
        assert "progress_bridge_ack_lag_seconds_count" in metrics
        assert (await http.get("/healthz")).json()["status"] == "ok"
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
    await client.close()


def test_the_bridge_serves_its_asyncapi_document(bridge: BridgeServer) -> None:
    answer = httpx.get(f"{bridge.base_url}/asyncapi.json")
    assert answer.status_code == 200
    assert answer.json() == json.loads(json.dumps(asyncapi_document()))
