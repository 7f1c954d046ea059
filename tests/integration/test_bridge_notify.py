"""Per-job notifications (``feed_mode = "notify"``): what pub/sub forgets, the bridge reads back.

Pub/sub delivers only to connections that are there: when the bridge's pub/sub connection drops
(here: ``CLIENT KILL TYPE pubsub`` while a job is written), the events published meanwhile are
gone from pub/sub but not from the job's stream. The bridge hears its channels confirmed again
and reads the gap back by id; each client gets every event once, in order — also for a job that
started during the gap and that a client sees only through its user room.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from progress_bridge.config import Settings
from progress_bridge.events import ProcessingQueued, ZoneCompleted
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.integration.bridge_client import open_client
from tests.waiting import poll, wait_for

EVENTS = 400


@pytest.fixture(scope="module")
def notify_store(redis_url: str) -> Iterator[EventStore]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield EventStore(client, Settings(redis_url=redis_url, feed_mode="notify"))
    client.close()


@pytest.fixture(scope="module")
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    with BridgeServer(bridge_settings(redis_url, feed_mode="notify")) as server:
        yield server


def kill_pubsub(client: redis.Redis) -> int:
    """Kill the bridge's pub/sub connection, once it has one (again)."""
    killed: int = wait_for(
        lambda: client.execute_command("CLIENT", "KILL", "TYPE", "pubsub"),
        "the bridge's pub/sub connection to be back",
    )
    return killed


def write_while_killing(store: EventStore, job_ids: list[str], kills: int) -> list[str]:
    """Append EVENTS zone events round-robin over the jobs; kill pub/sub connections meanwhile.
    Returns the ids appended, in order."""
    ids: list[str] = []
    for n in range(EVENTS):
        job = job_ids[n % len(job_ids)]
        event = store.append(
            ZoneCompleted(job_id=job, zone_id=f"z{n}", zone_index=n, processing_tool="t")
        )
        assert event.id is not None
        ids.append(f"{job}/{event.id}")
        if n % (EVENTS // (kills + 1)) == EVENTS // (kills + 1) // 2:
            assert kill_pubsub(store.client) >= 1
    return ids


async def test_a_dropped_pubsub_connection_loses_nothing_for_job_and_room_watchers(
    bridge: BridgeServer, notify_store: EventStore
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    token = mint(bridge.settings, user)
    jobs = [f"job-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    queued = {
        job: notify_store.append(ProcessingQueued(job_id=job, task_name="t", owner=user)).id
        for job in jobs
    }
    by_job = await open_client(bridge.ws_url, token)
    for job in jobs:
        await by_job.send({"op": "subscribe", "job_id": job})
        await by_job.op("subscribed")
    room = await open_client(bridge.ws_url, token)
    await room.send({"op": "subscribe", "room": f"user:{user}"})
    await room.op("subscribed")
    hub = bridge.bridge.hub
    assert hub is not None and hub.listening is not None
    gaps_before = hub.listening.gaps_read

    # Write two jobs while the bridge's pub/sub connection is killed three times, and start a
    # third job of the user in the middle of it all (the room must get it whole).
    late = f"job-{uuid.uuid4().hex[:12]}"
    thread_ids: list[str] = []

    def write() -> None:
        thread_ids.extend(write_while_killing(notify_store, jobs, kills=3))

    writer = threading.Thread(target=write)
    writer.start()
    wait_for(lambda: hub.listening is not None and hub.listening.gaps_read > gaps_before, "a gap")
    late_ids = [
        notify_store.append(ProcessingQueued(job_id=late, task_name="t", owner=user)).id,
        *(
            notify_store.append(
                ZoneCompleted(job_id=late, zone_id=f"z{n}", zone_index=n, processing_tool="t")
            ).id
            for n in range(5)
        ),
    ]
    writer.join()
    assert hub.listening.gaps_read > gaps_before  # the connection did drop and come back

    expected = {job: [queued[job]] for job in jobs}
    for item in thread_ids:
        job, _, event_id = item.partition("/")
        expected[job].append(event_id)
    last = {job: ids[-1] for job, ids in expected.items()}
    for job in jobs:
        await by_job.events_until(job, last[job])
        await room.events_until(job, last[job])
    await room.events_until(late, str(late_ids[-1]))

    def ids_of(events: list[dict[str, object]], job: str) -> list[str]:
        return [str(e["id"]) for e in events if e["job_id"] == job]

    for job in jobs:
        # by id: everything after the subscribe, once, in order
        assert ids_of(by_job.events, job) == expected[job][1:]
        got = ids_of(room.events, job)
        assert got == sorted(got, key=parse_stream_id) and len(got) == len(set(got))
        assert got == expected[job][-len(got) :]
    assert ids_of(room.events, late) == late_ids
    await by_job.close()
    await room.close()


async def test_a_subscribe_reads_history_only_once_its_channel_is_heard(
    bridge: BridgeServer, notify_store: EventStore
) -> None:
    # Many first subscribes to fresh jobs while each is being written: whatever the moment the
    # channel's confirmation lands, each client gets the snapshot and then every later event.
    token = mint(bridge.settings, "alice")
    for _ in range(5):
        job = f"job-{uuid.uuid4().hex[:12]}"
        notify_store.append(ProcessingQueued(job_id=job, task_name="t", owner="alice"))
        ids: list[str] = []

        def write(job: str = job, ids: list[str] = ids) -> None:
            for n in range(100):
                event = notify_store.append(
                    ZoneCompleted(job_id=job, zone_id=f"z{n}", zone_index=n, processing_tool="t")
                )
                ids.append(str(event.id))

        writer = threading.Thread(target=write)
        writer.start()
        client = await open_client(bridge.ws_url, token)
        await client.send({"op": "subscribe", "job_id": job})
        since = (await client.op("subscribed"))["snapshot"]["last_id"]
        writer.join()
        after = [i for i in ids if parse_stream_id(i) > parse_stream_id(since)]
        if after:
            await client.events_until(job, ids[-1])
        assert [str(e["id"]) for e in client.events if e["job_id"] == job] == after
        await client.close()
        await poll(lambda job=job: job not in bridge.bridge.hub.by_job, "the unsubscribe")  # type: ignore[union-attr]
