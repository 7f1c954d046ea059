"""Recovery after data loss tells the truth: Redis restarted without persistence.

A running job's stream and snapshot vanish with the data; its producer writes the job again in a
new epoch within about a second. A client resuming in between must not be told ``not_found``
(it would give up on a job that is running): the bridge waits for the job to reappear, then
answers ``recovered: false`` with the new epoch's snapshot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from progress_bridge.events import ProcessingProgress, ProcessingQueued, ProcessingStarted
from progress_bridge.store import EmbeddedValkey, EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import open_client

RESUME_WAIT_S = 3.0


@pytest.fixture
def server() -> Iterator[EmbeddedValkey]:
    """A server of this test's own, restarted on the same port by the test (persistence off)."""
    with EmbeddedValkey() as valkey:
        yield valkey


async def test_a_resume_after_a_non_persistent_restart_gets_the_restated_job_not_not_found(
    server: EmbeddedValkey, job_id: str
) -> None:
    settings = bridge_settings(server.url, bridge_resume_wait_s=RESUME_WAIT_S)
    store = EventStore.from_url(server.url, settings)
    # A running job, watched by its owner, who then drops the connection.
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    store.append(ProcessingStarted(job_id=job_id, owner="alice", attempt=1))
    store.append(ProcessingProgress(job_id=job_id, owner="alice", percent=40.0))
    with BridgeServer(settings) as bridge:
        client = await open_client(bridge.ws_url, mint(settings, "alice"))
        await client.send({"op": "subscribe", "job_id": job_id})
        snapshot = (await client.op("subscribed"))["snapshot"]
        await client.close()
        # Redis restarts without persistence: the job is gone.
        server.stop()
        server.start()
        assert store.snapshot(job_id) is None

        # The producer states the running job again a moment later, in a new epoch.
        def restate() -> None:
            store.append(ProcessingStarted(job_id=job_id, owner="alice", attempt=1))
            store.append(ProcessingProgress(job_id=job_id, owner="alice", percent=41.0))

        timer = threading.Timer(0.5, restate)
        timer.start()
        try:
            # The client resumes meanwhile, from the position it had.
            client = await open_client(bridge.ws_url, mint(settings, "alice"))
            await client.send(
                {
                    "op": "subscribe",
                    "job_id": job_id,
                    "epoch": snapshot["epoch"],
                    "last_id": snapshot["last_id"],
                }
            )
            reply = await client.recv_until(lambda f: f.get("op") in ("subscribed", "error"))
        finally:
            timer.join(TIMEOUT)
        answer = reply[-1]
        # Told the truth: not "not_found", but "recovered: false" with the job as it is now.
        assert answer["op"] == "subscribed", answer
        assert (answer["recovered"], answer["reason"]) == (False, "epoch_changed")
        assert answer["snapshot"]["epoch"] != snapshot["epoch"]
        assert answer["snapshot"]["status"] == "started"
        await client.close()


async def test_a_resume_of_a_job_that_never_reappears_is_not_found_after_the_wait(
    server: EmbeddedValkey, job_id: str
) -> None:
    settings = bridge_settings(server.url, bridge_resume_wait_s=RESUME_WAIT_S)
    with BridgeServer(settings) as bridge:
        client = await open_client(bridge.ws_url, mint(settings, "alice"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.send({"op": "subscribe", "job_id": job_id, "epoch": "e", "last_id": "5-0"})
        error = await client.op("error", RESUME_WAIT_S + TIMEOUT)
        assert error["code"] == "not_found"
        assert loop.time() - started >= RESUME_WAIT_S * 0.9
        # A first subscribe (no position) is answered at once.
        started = loop.time()
        await client.send({"op": "subscribe", "job_id": job_id})
        assert (await client.op("error"))["code"] == "not_found"
        assert loop.time() - started < RESUME_WAIT_S / 2
        await client.close()


async def test_a_subscribe_while_redis_is_down_is_unavailable_and_the_connection_stays(
    server: EmbeddedValkey, job_id: str
) -> None:
    settings = bridge_settings(server.url, bridge_resume_wait_s=0.0)
    store = EventStore.from_url(server.url, settings)
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    with BridgeServer(settings) as bridge:
        client = await open_client(bridge.ws_url, mint(settings, "alice"))
        server.stop()
        # Redis is away: the subscribe is answered "unavailable" (retry with backoff) ...
        await client.send({"op": "subscribe", "job_id": job_id, "ref": 1})
        error = await client.op("error")
        assert (error["code"], error["ref"]) == ("unavailable", 1)
        # ... and the connection is still there when it comes back (data lost: not found).
        server.start()
        await client.send({"op": "subscribe", "job_id": job_id, "ref": 2})
        assert (await client.op("error"))["code"] in ("not_found", "unavailable")
        await client.close()
