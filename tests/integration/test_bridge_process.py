"""The bridge as its own process, started the way operators start it (``progress-bridge
serve``), and the reader's recovery from a dropped Redis connection."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest
import redis

from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.cli import main
from progress_bridge.events import ProcessingQueued, ZoneCompleted
from progress_bridge.store import EventStore
from tests.bridge_server import (
    BridgeProcess,
    BridgeServer,
    bridge_settings,
    mint,
    settings_env,
)
from tests.integration.bridge_client import open_client


def test_token_subcommand_mints_a_token_the_server_accepts(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = bridge_settings(redis_url)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    assert main(["token", "--user", "alice", "--admin", "--job", "j1"]) == 0
    principal = TokenAuthority(settings).verify(capsys.readouterr().out.strip())
    assert (principal.user, principal.admin, principal.jobs) == ("alice", True, frozenset({"j1"}))
    # Without the secret a minted token could never verify: refuse.
    monkeypatch.delenv("PROGRESS_TOKEN_SECRET")
    assert main(["token", "--user", "alice"]) == 2
    assert "PROGRESS_TOKEN_SECRET" in capsys.readouterr().err


async def test_serve_subcommand_relays_events_and_sigterm_closes_clients_1012(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    # Start `progress-bridge serve` on a free port; follow a job through it.
    settings = bridge_settings(redis_url)
    with BridgeProcess(settings, cli=True) as bridge:
        store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))
        client = await open_client(bridge.ws_url, mint(settings, "alice"))
        await client.send({"op": "subscribe", "job_id": job_id})
        await client.op("subscribed")
        zone = store.append(
            ZoneCompleted(job_id=job_id, zone_id="z", zone_index=0, processing_tool="t")
        )
        assert zone.id is not None
        assert [e["id"] for e in await client.events_until(job_id, zone.id)] == [zone.id]
        # SIGTERM: the client is told to reconnect elsewhere, and the process exits cleanly.
        assert bridge.proc is not None
        bridge.proc.terminate()
        assert await client.closed_code() == 1012
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert bridge.stop() in (0, -signal.SIGTERM)


@pytest.fixture
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    with BridgeServer(bridge_settings(redis_url)) as server:
        yield server


async def test_reader_resumes_after_its_redis_connection_drops_without_losing_events(
    bridge: BridgeServer, store: EventStore, redis_client: redis.Redis, job_id: str
) -> None:
    # Follow a job; then every Redis client connection is killed, the reader's included.
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))
    client = await open_client(bridge.ws_url, mint(bridge.settings, "alice"))
    await client.send({"op": "subscribe", "job_id": job_id})
    await client.op("subscribed")
    redis_client.client_kill_filter(_type="normal", skipme=True)
    # Events written while the reader reconnects still arrive, once and in order.
    ids = [
        store.append(
            ZoneCompleted(job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t")
        ).id
        for n in range(20)
    ]
    assert ids[-1] is not None
    events = await client.events_until(job_id, ids[-1])
    assert [e["id"] for e in events] == ids
    await client.close()


async def test_client_moved_to_another_bridge_mid_job_resumes_without_loss_or_duplicate(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    # Two bridges on one Redis; the client follows the job through the first.
    settings = bridge_settings(redis_url)
    token = mint(settings, "alice")
    with BridgeServer(settings) as first, BridgeServer(settings) as second:
        store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))
        client = await open_client(first.ws_url, token)
        await client.send({"op": "subscribe", "job_id": job_id})
        epoch = (await client.op("subscribed"))["epoch"]
        before = [_zone(store, job_id, n) for n in range(5)]
        seen = [e["id"] for e in await client.events_until(job_id, before[-1])]
        assert seen == before
        # The first bridge goes away (its client is told 1012); events keep coming.
        stopping = asyncio.create_task(asyncio.to_thread(first.stop))
        assert await client.closed_code() == 1012
        await stopping
        missed = [_zone(store, job_id, n) for n in range(5, 10)]
        # The client resumes on the second bridge from its last position.
        moved = await open_client(second.ws_url, token)
        await moved.send({"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": seen[-1]})
        assert (await moved.op("subscribed"))["recovered"] is True
        live = _zone(store, job_id, 10)
        assert [e["id"] for e in await moved.events_until(job_id, live)] == [*missed, live]
        await moved.close()


def _zone(store: EventStore, job_id: str, n: int) -> str:
    event = store.append(
        ZoneCompleted(job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t")
    )
    assert event.id is not None
    return event.id
