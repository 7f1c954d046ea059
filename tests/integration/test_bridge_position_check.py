"""The position check: when a watched job's live source falls silent (here: the feed reader is
stopped outright), its entries still reach the watchers, read back from the job's stream, each
once."""

from __future__ import annotations

from progress_bridge.events import ProcessingQueued, ZoneCompleted
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import open_client
from tests.waiting import wait_for


async def test_entries_a_silent_feed_never_brought_are_read_back_once(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url, bridge_position_check_s=0.2)
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))
    with BridgeServer(settings) as bridge:
        client = await open_client(bridge.ws_url, mint(settings, "alice"))
        await client.send({"op": "subscribe", "job_id": job_id})
        await client.op("subscribed")
        # The feed reader stops: from now on nothing reaches the hub live.
        hub = bridge.bridge.hub
        assert hub is not None
        reader = next(t for t in hub._tasks if t.get_name() == "pb-feed-reader")
        reader.get_loop().call_soon_threadsafe(reader.cancel)
        wait_for(reader.done, "the feed reader to stop")
        ids = [
            store.append(
                ZoneCompleted(job_id=job_id, zone_id=f"z{i}", zone_index=i, processing_tool="t")
            ).id
            for i in range(3)
        ]
        # They arrive anyway, in order, each once (two checks, then the read-back).
        got = await client.events_until(job_id, ids[-1], wait_s=TIMEOUT)
        assert [e["id"] for e in got] == ids
        assert hub.position_check is not None and hub.position_check.gaps_read >= 1
        await client.close()
