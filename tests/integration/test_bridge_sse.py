"""``GET /sse``: the WebSocket's events over Server-Sent Events, read by a real HTTP client from
a real bridge — the same authorization, the same resume guarantees through ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from progress_bridge.bridge.core.frames import sse_frame_adapter
from progress_bridge.events import ProcessingQueued, ProcessingStarted, ZoneCompleted
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT


@pytest.fixture(scope="module")
def bridge(redis_url: str) -> Iterator[BridgeServer]:
    with BridgeServer(bridge_settings(redis_url)) as server:
        yield server


@dataclass
class SseReader:
    """Messages of one SSE response: each frame (``data``, checked against the ``SseFrame``
    model the TypeScript types are generated from) and the last ``id`` seen."""

    lines: AsyncIterator[str]
    frames: list[dict[str, Any]] = field(default_factory=list)
    last_id: str | None = None

    async def next_frame(self) -> dict[str, Any]:
        data: list[str] = []
        async for line in self.lines:
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line.startswith("id:"):
                self.last_id = line[3:].strip()
            elif line == "" and data:
                frame: dict[str, Any] = json.loads("\n".join(data))
                sse_frame_adapter.validate_python(frame)
                self.frames.append(frame)
                return frame
        raise EOFError("the stream ended")

    async def until(self, done: Any) -> dict[str, Any]:
        while True:
            frame = await self.next_frame()
            if done(frame):
                return frame


@asynccontextmanager
async def sse(
    bridge: BridgeServer, token: str | None, query: str, last_id: str | None = None
) -> AsyncIterator[tuple[httpx.Response, SseReader]]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    url = f"{bridge.base_url}/sse?{query}" + (f"&token={token}" if token else "")
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        yield response, SseReader(response.aiter_lines())


def _events(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for frame in frames:
        if frame["op"] == "event":
            out.append(frame["event"])
        elif frame["op"] == "batch":
            out.extend(frame["events"])
    return out


def _pairs(frames: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """``(job_id, id)`` of every event in ``frames``."""
    return {(e["job_id"], e["id"]) for e in _events(frames)}


def _zone(store: EventStore, job_id: str, n: int) -> str:
    event = store.append(
        ZoneCompleted(job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="t")
    )
    assert event.id is not None
    return event.id


async def test_a_job_streams_over_sse_and_resumes_from_last_event_id_without_gap_or_duplicate(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    token = mint(bridge.settings, "alice")
    async with sse(bridge, token, f"job_id={job_id}") as (response, reader):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        subscribed = await reader.until(lambda f: f["op"] == "subscribed")
        snapshot = subscribed["snapshot"]
        assert reader.last_id == f"{snapshot['epoch']}:{snapshot['last_id']}"
        first = [_zone(store, job_id, n) for n in range(3)]
        await reader.until(lambda f: first[-1] in [e["id"] for e in _events([f])])
        assert [e["id"] for e in _events(reader.frames)] == first
        assert reader.last_id == f"{snapshot['epoch']}:{first[-1]}"
        resume_from = reader.last_id
    # Disconnected; events meanwhile; EventSource reconnects with Last-Event-ID.
    missed = [_zone(store, job_id, n) for n in range(3, 6)]
    async with sse(bridge, token, f"job_id={job_id}", resume_from) as (_, reader):
        reply = await reader.until(lambda f: f["op"] == "subscribed")
        assert (reply["recovered"], reply["snapshot"]) == (True, None)
        await reader.until(lambda f: missed[-1] in [e["id"] for e in _events([f])])
        assert [e["id"] for e in _events(reader.frames)] == missed


@pytest.mark.parametrize(
    ("who", "query_job", "status", "code"),
    [
        pytest.param("bob", "mine", 403, "forbidden", id="another-users-job"),
        pytest.param("alice", "unknown", 404, "not_found", id="unknown-job"),
        pytest.param(None, "mine", 401, "unauthenticated", id="no-token"),
        pytest.param("alice", "both", 400, "bad_frame", id="job-and-room"),
    ],
)
async def test_refused_streams_get_an_http_status_and_no_event(
    bridge: BridgeServer,
    store: EventStore,
    job_id: str,
    who: str | None,
    query_job: str,
    status: int,
    code: str,
) -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    store.append(ProcessingStarted(job_id=job_id, owner="alice"))
    query = {
        "mine": f"job_id={job_id}",
        "unknown": "job_id=job-never-seen",
        "both": f"job_id={job_id}&room=user:alice",
    }[query_job]
    token = mint(bridge.settings, who) if who else None
    async with sse(bridge, token, query) as (response, _):
        assert response.status_code == status
        body = json.loads(await response.aread())
        assert body["code"] == code


def test_a_cross_site_origin_is_refused(bridge: BridgeServer, job_id: str) -> None:
    url = f"{bridge.base_url}/sse?job_id={job_id}&token={mint(bridge.settings, 'alice')}"
    answer = httpx.get(url, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403


async def test_a_user_room_streams_every_job_and_resumes_them_all_from_one_id(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    owner = f"u-{job_id}"
    jobs = [f"{job_id}-a", f"{job_id}-b"]
    for job in jobs:
        store.append(ProcessingQueued(job_id=job, task_name="t", owner=owner))
    token = mint(bridge.settings, owner)
    async with sse(bridge, token, f"room=user:{owner}") as (_, reader):
        reply = await reader.until(lambda f: f["op"] == "subscribed")
        assert sorted(s["job_id"] for s in reply["jobs"]) == sorted(jobs)
        assert reader.last_id is not None and reader.last_id.startswith("m:")
        # Ids are per job: two jobs' events may share one (same millisecond), so match both.
        seen = {(job, _zone(store, job, 0)) for job in jobs}
        await reader.until(lambda _: _pairs(reader.frames) >= seen)
        resume_from = reader.last_id
    missed = {(job, _zone(store, job, 1)) for job in jobs}
    async with sse(bridge, token, f"room=user:{owner}", resume_from) as (_, reader):
        reply = await reader.until(lambda f: f["op"] == "subscribed")
        assert {r["job_id"]: r["recovered"] for r in reply["replays"]} == dict.fromkeys(jobs, True)
        while _pairs(reader.frames) != missed:
            await reader.next_frame()


async def test_a_stream_whose_token_expires_ends_with_a_close_message_4001(
    bridge: BridgeServer, store: EventStore, job_id: str
) -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="t", owner="alice"))
    token = mint(bridge.settings, "alice", ttl_s=2)
    async with sse(bridge, token, f"job_id={job_id}") as (response, reader):
        assert response.status_code == 200
        await reader.until(lambda f: f["op"] == "subscribed")
        close = await reader.until(lambda f: f["op"] == "close")
        assert close == {"op": "close", "code": 4001, "reason": "token expired"}
        with pytest.raises(EOFError):
            await reader.next_frame()
