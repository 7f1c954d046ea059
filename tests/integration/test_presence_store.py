"""Presence sets on a real server (and a Valkey Cluster): counts, users, expiry without cleanup."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from progress_bridge.access import Principal
from progress_bridge.bridge.presence import PresenceTracker
from progress_bridge.config import Settings
from progress_bridge.exceptions import StreamUnavailable
from progress_bridge.store.clients import aclose_client, async_client
from progress_bridge.store.keys import KeySpace
from progress_bridge.store.presence import (
    Presence,
    PresenceChange,
    PresenceStore,
    watcher_member,
)
from tests.waiting import poll

pytestmark = pytest.mark.redis_modes


@pytest.fixture
async def client(redis_url: str, settings: Settings) -> AsyncIterator[Any]:
    client = async_client(redis_url, settings)
    yield client
    await aclose_client(client)


def presence(client: Any, settings: Settings, ttl_ms: int = 30_000) -> PresenceStore:
    return PresenceStore(
        client, KeySpace(settings.key_prefix, settings.feed_shards), ttl_ms=ttl_ms, max_users=3
    )


def jobs(n: int) -> list[str]:
    return [f"job-{uuid.uuid4().hex[:12]}" for _ in range(n)]


async def test_watchers_of_many_jobs_across_shards_are_counted_per_job(
    client: Any, settings: Settings
) -> None:
    store = presence(client, settings)
    ids = jobs(20)  # spread over every shard: one call per shard
    changes = {
        job: PresenceChange(add=[watcher_member("b1", n, f"u{n % 2}") for n in range(i + 1)])
        for i, job in enumerate(ids)
    }
    after = await store.apply(changes, users=True)
    assert {job: p.watching for job, p in after.items()} == {j: i + 1 for i, j in enumerate(ids)}
    assert sorted(after[ids[0]].users) == ["u0"]
    assert after[ids[5]].users == ("u0", "u1")  # sorted, whatever order they joined in

    # a second bridge joins one job; a watcher of the first leaves it
    job = ids[3]
    after = await store.apply(
        {job: PresenceChange(add=[watcher_member("b2", 1, "carol")], remove=[changes[job].add[0]])}
    )
    assert after[job].watching == 4
    assert after[job].users == ()  # counts only unless users are asked for
    read = await store.apply({}, read=[job, "job-nobody-watches"], users=True)
    assert read[job].watching == 4 and "carol" in read[job].users
    assert read["job-nobody-watches"].watching == 0


async def test_users_are_named_once_each_and_bounded(client: Any, settings: Settings) -> None:
    store = presence(client, settings)
    [job] = jobs(1)
    members = [watcher_member("b1", n, name) for n, name in enumerate("aabbcdde")]
    members.append(watcher_member("b1", 99, "x:y:z"))  # a user name may hold colons
    after = await store.apply({job: PresenceChange(add=members)}, users=True)
    assert after[job].watching == 9
    assert len(after[job].users) == 3 == len(set(after[job].users))  # max_users
    await store.apply({job: PresenceChange(remove=members[:8])})
    assert (await store.apply({}, read=[job], users=True))[job].users == ("x:y:z",)


async def test_a_bridge_that_stops_refreshing_disappears_with_its_set(
    client: Any, settings: Settings
) -> None:
    short = presence(client, settings, ttl_ms=300)
    [job] = jobs(1)
    await short.apply({job: PresenceChange(add=[watcher_member("dead", 1, "alice")])})
    alive = presence(client, settings, ttl_ms=30_000)
    await alive.apply({job: PresenceChange(add=[watcher_member("alive", 1, "bob")])})
    assert (await alive.apply({}, read=[job]))[job].watching == 2

    async def one_left() -> bool:
        return (await alive.apply({}, read=[job]))[job].watching == 1

    await poll(one_left, "the dead bridge's watcher to expire")
    assert (await alive.apply({}, read=[job], users=True))[job].users == ("bob",)

    # once nobody refreshes, the set itself expires: nothing is left behind
    await alive.apply({job: PresenceChange(remove=[watcher_member("alive", 1, "bob")])})
    await short.apply({job: PresenceChange(add=[watcher_member("dead", 2, "alice")])})
    key = KeySpace(settings.key_prefix, settings.feed_shards).presence(job)
    assert 0 < await client.pttl(key) <= 300

    async def gone() -> bool:
        return not await client.exists(key)

    await poll(gone, "the presence set to expire with its watchers")


class _FailingOnce(PresenceStore):
    """The real store, but its next call waits for ``go`` and then fails as an outage would."""

    def __init__(self, client: Any, settings: Settings) -> None:
        super().__init__(client, KeySpace(settings.key_prefix, settings.feed_shards), ttl_ms=30_000)
        self.fail_next = False
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()

    async def apply(self, changes: Any, *, read: Any = (), users: bool = False) -> Any:
        if self.fail_next:
            self.fail_next = False
            self.waiting.set()
            await self.go.wait()
            raise StreamUnavailable("the presence tick's call failed (on purpose)")
        return await super().apply(changes, read=read, users=users)


class _Watcher:
    """What the tracker reads of a connection: its session's principal (hashed by identity)."""

    def __init__(self, user: str) -> None:
        self.session = SimpleNamespace(principal=Principal(user))


async def test_a_watcher_that_left_while_a_failed_tick_carried_its_join_is_not_counted(
    client: Any, settings: Settings
) -> None:
    # A join waits for the next tick; that tick fails after the watcher left meanwhile. The
    # retry carries both the join and the leave: the watcher must not be counted (for a TTL).
    store = _FailingOnce(client, settings)
    tracker = PresenceTracker(store, settings)
    hub = SimpleNamespace(flush=lambda conns: None)
    [job] = jobs(1)
    stays: Any = _Watcher("alice")
    leaves: Any = _Watcher("bob")
    await tracker.join(stays, job, tell=False)
    await tracker.tick(hub)
    await tracker.join(leaves, job, tell=False)
    store.fail_next = True
    failing = asyncio.create_task(tracker.tick(hub))
    await store.waiting.wait()  # the tick took the join and is in its call to Redis
    tracker.leave(leaves, job)
    store.go.set()
    with pytest.raises(StreamUnavailable):
        await failing
    await tracker.tick(hub)
    read = await store.apply({}, read=[job], users=True)
    assert read[job] == Presence(1, ("alice",))
