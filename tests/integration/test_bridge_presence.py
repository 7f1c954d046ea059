"""Presence across bridge processes: who watches a job, counted in Redis, told to the watchers
that asked, and forgotten within the time to live when a bridge dies without saying goodbye."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from progress_bridge.config import Settings
from progress_bridge.events import ProcessingQueued
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeProcess, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import Client, open_client

#: Short, so a killed bridge's watchers expire within the test's patience.
TTL_S = 1.5


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return bridge_settings(redis_url, bridge_presence_interval_s=0.1, bridge_presence_ttl_s=TTL_S)


@pytest.fixture
def bridges(settings: Settings) -> Iterator[tuple[BridgeProcess, BridgeProcess]]:
    with BridgeProcess(settings) as a, BridgeProcess(settings) as b:
        yield a, b


async def watching(client: Client, job_id: str, count: int) -> dict[str, Any]:
    """The first presence frame of ``job_id`` that says ``count`` (earlier ones skipped)."""

    def says(frame: dict[str, Any]) -> bool:
        return (
            frame.get("op") == "presence"
            and frame["job_id"] == job_id
            and (frame["watching"] == count)
        )

    return (await client.recv_until(says, wait_s=TIMEOUT + TTL_S))[-1]


async def test_watchers_on_two_bridges_are_counted_and_a_killed_bridges_expire(
    settings: Settings,
    bridges: tuple[BridgeProcess, BridgeProcess],
    store: EventStore,
    job_id: str,
) -> None:
    a, b = bridges
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))

    # 1. Alice, on bridge A, asks: she is the only one watching.
    alice = await open_client(a.ws_url, mint(settings, "alice"))
    await alice.send({"op": "subscribe", "job_id": job_id, "presence": True})
    answer = await alice.op("subscribed")
    assert answer["presence"] == {"watching": 1}

    # 2. Bob (granted the job) on bridge B does not ask: he is counted, and told nothing.
    bob = await open_client(b.ws_url, mint(settings, "bob", jobs=[job_id]))
    await bob.send({"op": "subscribe", "job_id": job_id})
    assert "presence" not in await bob.op("subscribed")
    assert await watching(alice, job_id, 2) == {"op": "presence", "job_id": job_id, "watching": 2}

    # 3. An admin on A asks, and is told the users' names; alice only the count.
    carol = await open_client(a.ws_url, mint(settings, "carol", admin=True))
    await carol.send({"op": "subscribe", "job_id": job_id, "presence": True})
    answer = await carol.op("subscribed")
    assert answer["presence"] == {"watching": 3, "users": ["alice", "bob", "carol"]}
    assert "users" not in await watching(alice, job_id, 3)
    # The same numbers over HTTP, from either bridge.
    async with httpx.AsyncClient(base_url=b.base_url) as http:
        got = await http.get(
            f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {mint(settings, 'alice')}"}
        )
    assert got.status_code == 200, got.text
    assert got.json()["presence"] == {"watching": 3}

    # 4. Bridge B dies without a word: bob leaves every count within the time to live.
    b.kill()
    assert await watching(alice, job_id, 2) == {"op": "presence", "job_id": job_id, "watching": 2}
    assert (await watching(carol, job_id, 2))["users"] == ["alice", "carol"]

    # 5. Carol unsubscribes: alice is alone again, and bob was never sent a presence frame.
    await carol.send({"op": "unsubscribe", "job_id": job_id})
    await watching(alice, job_id, 1)
    assert not [f for f in bob.frames if f.get("op") == "presence"]
    for client in (alice, bob, carol):
        await client.close()


async def test_a_refused_subscribe_is_not_counted(
    settings: Settings, bridges: tuple[BridgeProcess, BridgeProcess], store: EventStore, job_id: str
) -> None:
    a, _ = bridges
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))
    mallory = await open_client(a.ws_url, mint(settings, "mallory"))
    await mallory.send({"op": "subscribe", "job_id": job_id, "presence": True, "ref": "m"})
    assert (await mallory.op("error"))["code"] == "forbidden"
    alice = await open_client(a.ws_url, mint(settings, "alice"))
    await alice.send({"op": "subscribe", "job_id": job_id, "presence": True})
    assert (await alice.op("subscribed"))["presence"] == {"watching": 1}
    for client in (mallory, alice):
        await client.close()
