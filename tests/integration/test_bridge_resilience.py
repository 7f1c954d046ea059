"""The bridge under stress: reconnect storms, several bridges, a killed bridge (a stalled reader:
``test_bridge_slow_consumer.py``).

Every test runs real bridge processes (``progress-bridge serve`` under uvicorn, on
free loopback ports, see :class:`tests.bridge_server.BridgeProcess`), real ``websockets``
clients and the session's real valkey. Clients follow a job the way the TypeScript client
does: remember ``(epoch, last_id)``, reconnect with it, and expect exactly what they missed.

Every event a client receives is recorded *as it came off the wire* (across all its
connections), so "nothing twice" is checked on the wire itself, not after a client-side dedupe.

Producers are paced with short sleeps so a job lasts long enough to be interrupted; that is
load shaping, not synchronisation: every wait on an outcome polls with a deadline from
:data:`~tests.conftest.TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from progress_bridge.config import Settings
from progress_bridge.events import (
    ProcessingCompleted,
    ProcessingProgress,
    ProcessingQueued,
    ProcessingStarted,
    ProgressEvent,
    ZoneCompleted,
    ZoneInfo,
    ZoneProcessing,
    ZonesDeclared,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.events.policy import COALESCED_TYPES
from progress_bridge.store import AsyncEventStore, EventStore
from tests.bridge_server import BridgeProcess, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.waiting import poll as _poll

pytestmark = pytest.mark.slow

JSON_PROTOCOL = Subprotocol("progress.v1.json")
TERMINAL = {"processing_completed", "processing_failed", "processing_cancelled"}


# -- a client that follows one job across reconnects -------------------------------------------


@dataclass
class Follower:
    """One job's follower: reconnects (to whatever ``url()`` says) and resumes from its position.

    ``received`` is every event off the wire, in arrival order, across all connections.
    """

    name: str
    token: str
    job_id: str
    url: Callable[[], str]
    epoch: str | None = None
    last_id: str | None = None
    start_id: str | None = None  # the position of the first subscribe's snapshot
    received: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.time() of each received event
    replies: list[dict[str, Any]] = field(default_factory=list)  # every ``subscribed``
    urls_used: list[str] = field(default_factory=list)
    ws: ClientConnection | None = None
    live: bool = False
    done: bool = False
    dropped: bool = False  # the current connection was dropped by the test
    #: Drops after which no reconnect was needed: frames already buffered by the client library
    #: before the drop still arrive, and they held the terminal event.
    ended_from_buffer: int = 0

    async def run(self) -> None:
        """Follow until the job's terminal event arrives (bounded by the caller's timeout)."""
        while not self.done:
            url = self.url()
            try:
                ws = await connect(
                    url,
                    subprotocols=[JSON_PROTOCOL, Subprotocol(f"token.{self.token}")],
                    open_timeout=TIMEOUT,
                    compression=None,
                )
            except (OSError, InvalidHandshake, TimeoutError):
                await asyncio.sleep(0.02)  # the bridge is (re)starting: retry backoff
                continue
            self.urls_used.append(url)
            self.ws = ws
            self.dropped = False
            try:
                await self._follow(ws)
            except ConnectionClosed:
                pass
            finally:
                if self.dropped and self.done:
                    self.ended_from_buffer += 1
                self.live = False
                self.ws = None
                with contextlib.suppress(Exception):
                    await ws.close()

    async def _follow(self, ws: ClientConnection) -> None:
        sub: dict[str, Any] = {"op": "subscribe", "job_id": self.job_id}
        if self.last_id is not None:
            sub.update(epoch=self.epoch, last_id=self.last_id)
        await ws.send(json.dumps(sub))
        async for raw in ws:
            frame = json.loads(raw)
            op = frame["op"]
            if op == "subscribed":
                self.replies.append(frame)
                if self.last_id is None:
                    self.epoch = frame["snapshot"]["epoch"]
                    self.last_id = self.start_id = frame["snapshot"]["last_id"]
                self.live = True
            elif op in ("event", "batch"):
                now = time.time()
                events = [frame["event"]] if op == "event" else frame["events"]
                for event in events:
                    self.received.append(event)
                    self.arrivals.append(now)
                    self.last_id = event["id"]
                    if event["type"] in TERMINAL:
                        self.done = True
                if self.done:
                    return
            elif op == "error":
                raise AssertionError(f"{self.name}: bridge error {frame}")

    def drop(self, rng: random.Random) -> bool:
        """Drop the connection abruptly (TCP abort) or with a close frame; False if not live."""
        ws = self.ws
        if ws is None or not self.live:
            return False
        self.live = False
        self.dropped = True
        if rng.random() < 0.5:
            ws.transport.abort()
        else:
            asyncio.get_running_loop().create_task(ws.close())
        return True


def _key(event: dict[str, Any]) -> tuple[int, int]:
    return parse_stream_id(str(event["id"]))


def _assert_wire_strictly_increasing(f: Follower) -> None:
    keys = [_key(e) for e in f.received]
    dupes = len(keys) - len(set(keys))
    assert all(a < b for a, b in itertools.pairwise(keys)), (
        f"{f.name}: ids not strictly increasing on the wire ({dupes} duplicates)"
    )


def _assert_got_exactly(f: Follower, history: list[ProgressEvent]) -> None:
    """Every event after the follower's first position, once, in order, as stored."""
    assert f.start_id is not None
    start = parse_stream_id(f.start_id)
    expected = [e.id for e in history if e.id is not None and parse_stream_id(e.id) > start]
    got = [e["id"] for e in f.received]
    missing = sorted(set(expected) - set(got))
    assert got == expected, f"{f.name}: {len(got)} events vs {len(expected)}; missing {missing[:5]}"


async def _run_all(followers: list[Follower], wait_s: float) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(f.run(), name=f.name) for f in followers]
    await _poll(lambda: all(f.live for f in followers), "every follower to subscribe", wait_s)
    return tasks


async def _finish(tasks: list[asyncio.Task[None]], wait_s: float) -> None:
    try:
        async with asyncio.timeout(wait_s):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _start_job(store: EventStore, job_id: str, owner: str = "owner") -> None:
    store.append(ProcessingQueued(job_id=job_id, task_name="resilience", owner=owner))
    store.append(ProcessingStarted(job_id=job_id))


def _followers(
    settings: Settings, job_id: str, n: int, url: Callable[[int], Callable[[], str]]
) -> list[Follower]:
    return [
        Follower(
            name=f"f{i}",
            token=mint(settings, f"watcher{i}", jobs=[job_id]),
            job_id=job_id,
            url=url(i),
        )
        for i in range(n)
    ]


def _zone_events(job_id: str, n: int, start: int = 0) -> list[ProgressEvent]:
    """``n`` never-droppable events (zone processing / completed pairs)."""
    out: list[ProgressEvent] = []
    for i in range(start, start + n):
        zone = i // 2
        if i % 2 == 0:
            out.append(
                ZoneProcessing(
                    job_id=job_id, zone_id=f"z{zone}", zone_index=zone, processing_tool="t"
                )
            )
        else:
            out.append(
                ZoneCompleted(
                    job_id=job_id, zone_id=f"z{zone}", zone_index=zone, processing_tool="t"
                )
            )
    return out


@pytest.fixture
def bridge(redis_url: str) -> Iterator[BridgeProcess]:
    with BridgeProcess(bridge_settings(redis_url)) as proc:
        yield proc


# -- 1. reconnect storm ------------------------------------------------------------------------

STORM_CLIENTS = 50
STORM_EVENTS = 2_000
STORM_DROPS = 200


def _render_snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    """What a page shows from a snapshot (the fields this job's events change)."""
    return {
        "status": snap["status"],
        "percent": snap["percent"],
        "current_zone": snap["current_zone"],
        "zones": {z["zone_id"]: z["status"] for z in snap["zones"]},
    }


def _render(f: Follower) -> dict[str, Any]:
    """A client's state: its first snapshot, then each received event applied in order."""
    state = _render_snapshot(f.replies[0]["snapshot"])
    for e in f.received:
        match e["type"]:
            case "processing_progress":
                state.update(percent=e["percent"], current_zone=e["current_zone"])
            case "zone_processing":
                state["zones"][e["zone_id"]] = "processing"
                state["current_zone"] = e["zone_id"]
            case "zone_completed":
                state["zones"][e["zone_id"]] = e["status"]
            case "processing_completed":
                state.update(status="completed", percent=100.0)
    return state


def _storm_events(job_id: str) -> list[ProgressEvent]:
    """The job's events after queued, started and zones_declared: zones and progress
    interleaved, then the end."""
    body: list[ProgressEvent] = []
    zone = 0
    while len(body) < STORM_EVENTS - 4:
        body += [
            ZoneProcessing(job_id=job_id, zone_id=f"z{zone}", zone_index=zone, processing_tool="t"),
            ProcessingProgress(job_id=job_id, percent=min(99.0, zone / 7), current_zone=f"z{zone}"),
            ZoneCompleted(job_id=job_id, zone_id=f"z{zone}", zone_index=zone, processing_tool="t"),
        ]
        zone += 1
    body = body[: STORM_EVENTS - 4]
    return [*body, ProcessingCompleted(job_id=job_id, result_summary="done")]


@pytest.mark.redis_modes
@pytest.mark.feed_modes
async def test_reconnect_storm_every_client_gets_every_event_once_in_order(
    bridge: BridgeProcess, store: EventStore, redis_url: str, job_id: str
) -> None:
    # A job exists and has declared its zones; 50 clients follow it (each its own user,
    # granted the job).
    _start_job(store, job_id)
    zones = [ZoneInfo(zone_id=f"z{n}", index=n) for n in range(STORM_EVENTS // 3 + 1)]
    store.append(ZonesDeclared(job_id=job_id, zones=zones, zones_total=len(zones)))
    followers = _followers(bridge.settings, job_id, STORM_CLIENTS, lambda i: lambda: bridge.ws_url)
    tasks = await _run_all(followers, TIMEOUT)
    # The producer appends the rest of the 2,000-event job; after every 10 events one client
    # chosen at random is dropped (half abruptly, half with a close frame) and reconnects
    # with its (epoch, last_id) — sometimes while it is still replaying.
    rng = random.Random(20261125)
    astore = AsyncEventStore.from_url(redis_url, bridge.settings)
    drops = 0
    try:
        for n, event in enumerate(_storm_events(job_id), start=1):
            # Drop before appending, and only clients that have not seen the end yet: a client
            # dropped after its terminal event has nothing left to reconnect for.
            if n % 10 == 0 and drops < STORM_DROPS:
                live = [f for f in followers if f.live and not f.done]
                if not live:
                    live = await _poll(
                        lambda: [f for f in followers if f.live and not f.done], "a live client"
                    )
                if rng.choice(live).drop(rng):
                    drops += 1
                await asyncio.sleep(0.005)  # pacing: spread the job over a few seconds
            await astore.append(event)
        while drops < STORM_DROPS:  # bounded: each pass drops one live client or waits for one
            live = await _poll(lambda: [f for f in followers if f.live and not f.done], "live")
            drops += rng.choice(live).drop(rng)
    finally:
        await astore.aclose()
    # Every client reaches the terminal event.
    await _finish(tasks, 6 * TIMEOUT)
    assert drops == STORM_DROPS
    history = store.history(job_id)
    assert len(history) == STORM_EVENTS
    snap = store.snapshot(job_id)
    assert snap is not None
    kept = [e.id for e in history if e.type not in COALESCED_TYPES]
    last_progress = [e for e in history if e.type == "processing_progress"][-1]
    reconnects = 0
    for f in followers:
        reconnects += len(f.urls_used) - 1 + f.ended_from_buffer
        # Every reply honoured the position (nothing trimmed, same epoch).
        assert all(r["recovered"] and r["reason"] == "ok" for r in f.replies), f.name
        # Nothing twice and in order, on the wire, across every reconnect.
        _assert_wire_strictly_increasing(f)
        # Zone, lifecycle and terminal events: every one, exactly once, in order. Progress
        # updates may coalesce for a lagging client (latest wins), never reorder or invent.
        start = parse_stream_id(f.start_id or "0-0")
        expected = [i for i in kept if i is not None and parse_stream_id(i) > start]
        assert [e["id"] for e in f.received if e["type"] not in COALESCED_TYPES] == expected
        assert {e["id"] for e in f.received} <= {e.id for e in history}
        # The state the client ends with (its first snapshot, then every event applied) is
        # the job's snapshot.
        assert _render(f) == _render_snapshot(snap.model_dump(mode="json")), f.name
        progress = [e for e in f.received if e["type"] == "processing_progress"]
        assert progress[-1]["id"] == last_progress.id, f"{f.name}: latest progress lost"
        assert f.last_id == snap.last_id
    assert reconnects >= STORM_DROPS


# -- 2. two bridges on one Redis ---------------------------------------------------------------


async def test_client_moved_between_two_bridges_mid_job_resumes_without_loss_or_duplicate(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    with BridgeProcess(settings) as one, BridgeProcess(settings) as two:
        urls = [one.ws_url, two.ws_url]
        _start_job(store, job_id)
        # 10 clients, half starting on each bridge; every reconnect goes to the other bridge.
        turns = [0] * 10

        def alternate(i: int) -> Callable[[], str]:
            def url() -> str:
                turns[i] += 1
                return urls[(i + turns[i]) % 2]

            return url

        followers = _followers(settings, job_id, 10, alternate)
        tasks = await _run_all(followers, TIMEOUT)
        # The producer writes 600 zone events; every 30, each client is moved to the other
        # bridge (its connection dropped, reconnecting there with its position).
        rng = random.Random(2)
        astore = AsyncEventStore.from_url(redis_url, settings)
        try:
            events = [*_zone_events(job_id, 600), ProcessingCompleted(job_id=job_id)]
            for n, event in enumerate(events, start=1):
                await astore.append(event)
                if n % 30 == 0 and n < 600:
                    for f in followers:
                        f.drop(rng)
                    await asyncio.sleep(0.01)  # pacing
        finally:
            await astore.aclose()
        await _finish(tasks, 3 * TIMEOUT)
    # Each client got every event after its first position exactly once, in order, from both.
    history = store.history(job_id)
    for f in followers:
        _assert_wire_strictly_increasing(f)
        _assert_got_exactly(f, history)
        assert set(f.urls_used) == set(urls), f"{f.name} never moved: {f.urls_used}"
        assert all(r["recovered"] for r in f.replies)


# -- 3. bridge killed and restarted mid-job -----------------------------------------------------


async def test_bridge_killed_and_restarted_mid_job_clients_resume_without_loss_or_duplicate(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    port_holder: list[BridgeProcess] = [BridgeProcess(settings).start()]
    url = port_holder[0].ws_url
    try:
        _start_job(store, job_id)
        followers = _followers(settings, job_id, 10, lambda i: lambda: url)
        tasks = await _run_all(followers, TIMEOUT)
        astore = AsyncEventStore.from_url(redis_url, settings)
        events = [*_zone_events(job_id, 600), ProcessingCompleted(job_id=job_id)]
        try:
            for n, event in enumerate(events, start=1):
                await astore.append(event)
                if n == 200:
                    # SIGKILL the bridge: no close frames, nothing flushed.
                    code = await asyncio.to_thread(port_holder[0].kill)
                    assert code == -9
                    await _poll(lambda: not any(f.live for f in followers), "clients to notice")
                if n == 350:
                    # Restart on the same port while events keep coming (clients retry).
                    fresh = BridgeProcess(settings, port=port_holder[0].port)
                    port_holder[0] = await asyncio.to_thread(fresh.start)
                if n % 10 == 0:
                    await asyncio.sleep(0.005)  # pacing
        finally:
            await astore.aclose()
        await _finish(tasks, 3 * TIMEOUT)
    finally:
        port_holder[0].stop()
    history = store.history(job_id)
    for f in followers:
        _assert_wire_strictly_increasing(f)
        _assert_got_exactly(f, history)
        assert len(f.urls_used) >= 2, f"{f.name} never reconnected"
        assert all(r["recovered"] for r in f.replies)


# -- 4. slow consumers: see test_bridge_slow_consumer.py ----------------------------------------


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
