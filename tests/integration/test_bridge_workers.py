"""``progress-bridge serve --workers 2``: two bridge processes on one port, each with its own
feed reader; clients land on both and all get every event; ``/metrics`` from either counts the
whole server; SIGTERM closes every client with 1012 and stops every process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from progress_bridge.events import ProcessingQueued, ZoneCompleted
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import free_port
from tests.bridge_server import bridge_settings, mint, settings_env, wait_healthy
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import Client, open_client

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 20

pytestmark = pytest.mark.slow


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    settings = bridge_settings(redis_url)
    port = free_port()
    env = {**os.environ, **settings_env(settings)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "progress_bridge.cli",
            "serve",
            "--bare",
            "--workers",
            "2",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", lambda: proc.poll() is None)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_two_processes_share_the_port_and_stop_together_with_1012(
    two_workers: tuple[subprocess.Popen[bytes], int], store: EventStore, job_id: str
) -> None:
    proc, port = two_workers
    base = f"http://127.0.0.1:{port}"
    settings = bridge_settings(store.settings.redis_url or "")
    # Two processes answer on the one port (each request a new connection).
    pids = set()
    for _ in range(40):
        async with httpx.AsyncClient() as http:
            pids.add((await http.get(f"{base}/healthz")).json()["pid"])
    assert len(pids) == 2 and proc.pid not in pids
    # Clients everywhere get every event.
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    clients: list[Client] = []
    for _ in range(CLIENTS):
        client = await open_client(f"ws://127.0.0.1:{port}/ws", mint(settings, "alice"))
        await client.send({"op": "subscribe", "job_id": job_id})
        await client.op("subscribed")
        clients.append(client)
    last = ""
    for n in range(5):
        event = store.append(
            ZoneCompleted(job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t")
        )
        assert event.id is not None
        last = event.id
    for client in clients:
        events = await client.events_until(job_id, last)
        assert [e["zone_id"] for e in events] == [f"z{n}" for n in range(5)]
    # /metrics from either process counts every connection of the server.
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(6):
            text = (await http.get("/metrics")).text
            assert _metric(text, "progress_bridge_connections") == CLIENTS
            assert _metric(text, "progress_bridge_connections_opened_total") >= CLIENTS
    # SIGTERM: every client is closed with 1012, and every process ends.
    proc.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(c.closed_code() for c in clients))
    assert set(codes) == {1012}
    assert proc.wait(timeout=TIMEOUT) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
