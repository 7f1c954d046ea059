"""A closed connection leaves nothing behind, without a garbage collection (DESIGN.md
invariant 6): no object of it survives, and no reference cycle is left for the collector.

Why without a collection: the bridge server turns growth-triggered full collections off
(``gcpolicy``), so a cycle that reaches the old generation stays until the timed one — under
connection churn that was hundreds of MB (``docs/benchmarks.md``, *Soak*). Here the collector
is off for the whole test; connections are opened and ended in every way the bridge sees them
end, through a real uvicorn server, by clients in another process (so this process's garbage
is the server's); then the objects of every connection must already be gone, and a collection
must find none of the server's objects unreachable.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from progress_bridge.events import ProcessingQueued, ZoneCompleted
from progress_bridge.store import EventStore
from tests.bridge_server import ROOT, BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT

#: The per-connection objects of the server side.
TRACKED = {
    "progress_bridge.bridge.connection.Connection",
    "progress_bridge.bridge.core.session.Session",
    "progress_bridge.bridge.core.outbox.Outbox",
    "progress_bridge.bridge.direct.DirectWriter",
    "progress_bridge.bridge.uvicorn_ws.BridgeWebSocketProtocol",
    "progress_bridge.bridge.uvicorn_http.BridgeHttpProtocol",
    "websockets.server.ServerProtocol",
    "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
    "uvloop.loop.TCPTransport",
}
TRANSPORT = "uvloop.loop.TCPTransport"
#: Modules whose objects, found unreachable, would be the server's cycles.
SERVER_MODULES = (
    "progress_bridge",
    "uvicorn.protocols",
    "websockets",
    "starlette",
    "fastapi",
    "httptools",
    "uvloop",
    "_asyncio",
    "asyncio",
)
PLAN = "close:30,abort:30,wait:10,badtoken:10,stall:3"


def _count(objects: list[object]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for obj in objects:
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if name in TRACKED and not (name == TRANSPORT and _redis_client(obj)):
            counted[name] += 1
    return counted


def _redis_client(transport: Any) -> bool:
    """A transport of an asyncio stream: a pooled Redis connection, not a client's socket.

    The pool opens connections as concurrent subscribes need them (up to its size) and keeps
    them; with presence on, a subscribe holds one for longer, so a burst opens more.
    """
    return isinstance(transport.get_protocol(), asyncio.StreamReaderProtocol)


def _server_garbage() -> Counter[str]:
    """Classes of the server's objects a full collection finds unreachable (then freed)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.startswith(SERVER_MODULES)
        )
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.collect()  # saved above: free them now
    return found


def _poll(check: object, what: str, wait_s: float = TIMEOUT) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)  # polling interval, not synchronisation
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_connections_ended_every_way_leave_no_object_and_no_cycle_behind(
    redis_url: str, store: EventStore, job_id: str, collector_off: None
) -> None:
    settings = bridge_settings(
        redis_url,
        bridge_heartbeat_s=1.0,  # "wait" clients never answer: closed 4000 after 2 s
        bridge_outbox_max_bytes=64 * 1024,  # stalled readers: closed 4008 soon
        bridge_close_linger_s=1.0,  # ...and their undrained sockets aborted 1 s later
        bridge_max_connections_per_user=1000,
    )
    store.append(ProcessingQueued(job_id=job_id, task_name="churn", owner="churn"))
    with BridgeServer(settings) as server:
        hub = server.bridge.hub
        assert hub is not None
        state = server.server.server_state
        # Start-up leaves garbage of its own (logging configuration; the feed reader's first
        # look at missing shards): collected now, it is not the connections'.
        _poll(lambda: hub.reader_ok_at > 0, "the feed reader's first read")
        gc.collect()
        before = _count(gc.get_objects())
        token = mint(settings, "churn")
        command = [sys.executable, "-m", "tests.integration.churn_client", server.ws_url]
        client = subprocess.Popen(
            [*command, token, job_id, PLAN],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert client.stdout is not None
            assert client.stdout.readline().strip() == "ready"
            # Events flow while the stalled readers fill their sockets, until each is closed.
            n = 0

            def stalled_closed() -> bool:
                nonlocal n
                store.append_many(
                    ZoneCompleted(
                        job_id=job_id,
                        zone_id=f"z{i}",
                        zone_index=i,
                        processing_tool="t",
                        summary="x" * 2000,
                    )
                    for i in range(n, n + 20)
                )
                n += 20
                return not hub.conns

            _poll(stalled_closed, "every connection to leave the hub")
        finally:
            assert client.stdin is not None
            client.stdin.close()
            client.wait(TIMEOUT)
        # Every socket is gone (the stalled ones aborted after the linger).
        _poll(lambda: not state.connections, "uvicorn to drop every connection")
        # Every one of them watched a job: presence keeps none of them.
        assert hub.presence is not None and not hub.presence.watchers
        closed = server.bridge.metrics.registry.get_sample_value
        assert closed("progress_bridge_closed_slow_total") == 3
        assert closed("progress_bridge_connections_closed_total", {"code": "4000"}) == 10
        assert closed("progress_bridge_connections_closed_total", {"code": "4001"}) == 10

        # Without any collection, no connection's objects are left.
        def nothing_left() -> bool:
            return not _count(gc.get_objects()) - before  # none more than before

        try:
            _poll(nothing_left, "the connections' objects to be freed", 2.0)
        except AssertionError:
            left = _count(gc.get_objects()) - before
            raise AssertionError(f"left behind: {dict(left)}") from None
        # And no cycle of the server's is waiting for the collector.
        assert _server_garbage() == Counter()


async def test_a_subscribe_still_reading_when_its_connection_ends_leaves_nothing_behind(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    # The connection goes while its subscribe waits for the store: the subscribe's task must
    # not register it afterwards (a routing table would hold it for ever).
    from tests.integration.bridge_client import open_client

    settings = bridge_settings(redis_url)
    store.append(ProcessingQueued(job_id=job_id, task_name="churn", owner="quick"))
    with BridgeServer(settings) as server:
        hub = server.bridge.hub
        assert hub is not None
        for _ in range(20):
            client = await open_client(server.ws_url, mint(settings, "quick"))
            await client.ws.send(json.dumps({"op": "subscribe", "job_id": job_id}))
            client.ws.transport.abort()
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while hub.conns or hub.by_job.get(job_id):
            assert asyncio.get_running_loop().time() < deadline, "a connection stayed registered"
            await asyncio.sleep(0.02)  # polling interval
