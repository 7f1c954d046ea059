"""Several bridges behind one nginx (``docs/deploy/nginx.conf``), with no sticky sessions: a
client whose bridge is killed reconnects through the proxy to another and resumes, losing
nothing and repeating nothing."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from progress_bridge.client import watch
from progress_bridge.events import (
    JobSnapshot,
    ProcessingCompleted,
    ProcessingQueued,
    ProgressEvent,
    ZoneCompleted,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import free_port
from tests.bridge_server import BridgeProcess, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.missing import missing

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.slow


@pytest.fixture
def nginx_binary() -> str:
    if not Path(NGINX).exists():
        missing("nginx is not installed (scripts/bootstrap --browser installs Debian's nginx)")
    return NGINX


def _start_nginx(
    binary: str, prefix: Path, bridges: list[int]
) -> tuple[subprocess.Popen[bytes], int]:
    listen = free_port()
    conf = (ROOT / "docs" / "deploy" / "nginx.conf").read_text()
    for name, value in (
        ("PREFIX", prefix),
        ("BRIDGE_1", bridges[0]),
        ("BRIDGE_2", bridges[1]),
        ("LISTEN", listen),
    ):
        conf = conf.replace(f"@{name}@", str(value))
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{listen}/healthz", timeout=1).status_code == 200:
                return proc, listen
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline, "nginx did not proxy in time"
        time.sleep(0.05)


@pytest.fixture
def proxied_bridges(
    redis_url: str, nginx_binary: str, tmp_path: Path
) -> Iterator[tuple[list[BridgeProcess], int]]:
    settings = bridge_settings(redis_url)
    with BridgeProcess(settings) as one, BridgeProcess(settings) as two:
        proc, listen = _start_nginx(nginx_binary, tmp_path, [one.port, two.port])
        try:
            yield [one, two], listen
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _holder(bridges: list[BridgeProcess], admin: str) -> BridgeProcess:
    """The bridge the client is connected to (its admin view lists the connection)."""
    for bridge in bridges:
        if bridge.proc is None:
            continue
        answer = httpx.get(
            f"{bridge.base_url}/api/admin/connections",
            headers={"Authorization": f"Bearer {admin}"},
        )
        if answer.json()["count"]:
            return bridge
    raise AssertionError("no bridge holds the connection")


async def test_a_client_behind_the_proxy_survives_its_bridge_being_killed(
    proxied_bridges: tuple[list[BridgeProcess], int], store: EventStore, job_id: str
) -> None:
    bridges, listen = proxied_bridges
    settings = bridges[0].settings
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    received: list[ProgressEvent] = []
    snapshots: list[JobSnapshot] = []

    async def follow() -> None:
        url = f"ws://127.0.0.1:{listen}/ws"
        async for update in watch(url, job_id, token=mint(settings, "alice"), min_delay_s=0.05):
            (snapshots if isinstance(update, JobSnapshot) else received).append(update)  # type: ignore[arg-type]

    watcher = asyncio.create_task(follow())
    written: list[str] = []
    try:
        for n in range(30):
            if n == 10:
                # Kill the bridge the client is on; the proxy sends it to the other one.
                assert snapshots, "the client got no snapshot in its first 10 events' time"
                _holder(bridges, mint(settings, "root", admin=True)).kill()
            event = store.append(
                ZoneCompleted(job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t")
            )
            assert event.id is not None
            written.append(event.id)
            await asyncio.sleep(0.02)
        end = store.append(ProcessingCompleted(job_id=job_id, owner="alice"))
        assert end.id is not None
        written.append(end.id)
        await asyncio.wait_for(watcher, TIMEOUT)
    finally:
        watcher.cancel()
    start = parse_stream_id(snapshots[0].last_id)
    expected = [i for i in written if parse_stream_id(i) > start]
    assert [e.id for e in received] == expected
