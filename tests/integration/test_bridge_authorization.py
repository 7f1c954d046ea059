"""Authorize before register: a refused subscriber never receives an event of the job it was
refused, however the subscribe races a running job (DESIGN.md invariant 10).

The attack (seen by an independent client): many connections of one user subscribe again and
again to another user's running job, by id, by id with a position, through the owner's room and
through the job's document room. Every reply must be a refusal (or an empty room), and not one
event of the job may reach any of them — while an authorized watcher of the same bridge receives
the job's events all along, so the test would see a leak if one happened.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from progress_bridge.events import ProcessingProgress, ProcessingQueued
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import Client, events_in, open_client
from tests.waiting import poll

#: Connections of the attacker, and how long they keep subscribing (seconds).
ATTACKERS = 10
ATTACK_S = 3.0
#: Subscribes per second per attacking connection (below the inbound rate limit).
SUBSCRIBES_PER_S = 15


@pytest.fixture(scope="module")
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    settings = bridge_settings(
        redis_url,
        bridge_max_connections_per_user=ATTACKERS + 2,
        # The admin reads the job's events only after the attack: meanwhile it is a stalled
        # reader of a job written as fast as the store takes it (megabytes). Not what this
        # test is about: the 1 MiB slow-consumer bound (4008) would close it first.
        bridge_outbox_max_bytes=64 * 1024 * 1024,
    )
    with BridgeServer(settings) as server:
        yield server


def _run_job_meanwhile(store: EventStore, job_id: str, stop: threading.Event) -> threading.Thread:
    """Append progress events to the victim's job, as fast as the store takes them, until
    ``stop`` is set."""

    def run() -> None:
        percent = 0.0
        while not stop.is_set():
            percent = min(99.0, percent + 0.01)
            store.append(ProcessingProgress(job_id=job_id, percent=percent))

    thread = threading.Thread(target=run, name="victim-job", daemon=True)
    thread.start()
    return thread


async def _watchers(bridge: BridgeServer, job_id: str) -> list[str]:
    """Who watches the job, as an admin reads it over HTTP."""
    token = mint(bridge.settings, "root", admin=True)
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        got = await http.get(f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    got.raise_for_status()
    return list(got.json()["presence"]["users"])


async def _attack(client: Client, job_id: str, epoch: str, doc: str) -> list[dict[str, Any]]:
    """Subscribe to the victim's job every way the protocol allows, in turn, until the time is
    up; return every frame received (pings aside)."""
    frames = [
        {"op": "subscribe", "job_id": job_id, "presence": True},
        {"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": "0-0"},
        {"op": "subscribe", "room": "user:alice"},
        {"op": "subscribe", "room": f"document:{doc}"},
        {
            "op": "subscribe",
            "room": f"document:{doc}",
            "positions": {job_id: {"epoch": epoch, "last_id": "0-0"}},
        },
    ]
    loop = asyncio.get_running_loop()
    end = loop.time() + ATTACK_S
    sent = 0
    while loop.time() < end:
        frame = frames[sent % len(frames)]
        ref = sent
        await client.send({**frame, "ref": ref})
        sent += 1
        await client.recv_until(lambda f, ref=ref: f.get("ref") == ref)  # type: ignore[misc]
        # Pace the next subscribe, reading whatever arrives meanwhile.
        pause_until = loop.time() + 1 / SUBSCRIBES_PER_S
        while (left := pause_until - loop.time()) > 0:
            try:
                await client.recv(left)
            except TimeoutError:
                break
    # Unsubscribe from the rooms and read a little longer: nothing late may arrive either.
    await client.send({"op": "unsubscribe", "room": f"document:{doc}", "ref": "end"})
    await client.recv_until(lambda f: f.get("ref") == "end")
    return [f for f in client.frames if f.get("op") != "ping"]


async def test_refused_subscribes_racing_a_running_job_receive_none_of_its_events(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    # Alice's job runs; an admin watches it, so events are flowing through this bridge.
    doc = f"doc-{job_id}"
    queued = store.append(
        ProcessingQueued(job_id=job_id, task_name="victim", owner="alice", document_id=doc)
    )
    assert queued.epoch is not None
    admin = await open_client(bridge.ws_url, mint(bridge.settings, "root", admin=True))
    await admin.send({"op": "subscribe", "job_id": job_id})
    await admin.op("subscribed")
    stop = threading.Event()
    writer = _run_job_meanwhile(store, job_id, stop)
    attackers: list[Client] = []
    try:
        # Bob's connections subscribe to it every way, over and over, while it runs.
        for _ in range(ATTACKERS):
            attackers.append(await open_client(bridge.ws_url, mint(bridge.settings, "bob")))
        seen = await asyncio.gather(*(_attack(c, job_id, queued.epoch, doc) for c in attackers))

        # With the attackers still connected, the job's watchers are the admin alone: no
        # refused subscribe was counted (bob would stay in the set until its time to live).
        async def admin_alone() -> bool:
            return await _watchers(bridge, job_id) == ["root"]

        await poll(admin_alone, "the admin alone watching")
    finally:
        stop.set()
        writer.join(TIMEOUT)
        for client in attackers:
            await client.close()
    # The admin received the job's events meanwhile: there was something to leak.
    admin_events = await admin.events_until(job_id, store.snapshot(job_id).last_id)  # type: ignore[union-attr]
    assert len(admin_events) > 100
    # Not one event of the job reached bob, and every answer was a refusal or an empty room.
    leaked = [e for frames in seen for f in frames for e in events_in(f)]
    assert leaked == []
    replies = [f for frames in seen for f in frames if f.get("op") in ("subscribed", "error")]
    assert len(replies) >= ATTACKERS * ATTACK_S * SUBSCRIBES_PER_S * 0.5
    for reply in replies:
        if reply.get("room", "").startswith("document:"):
            assert reply["op"] == "subscribed"
            assert (reply["jobs"], reply["replays"]) == ([], [])
        else:
            assert (reply["op"], reply["code"]) == ("error", "forbidden"), reply
    await admin.close()
