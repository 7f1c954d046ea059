"""Baselines for ``bench/bench_bridge.py``, fed by the same Redis live feed as the bridge.

``naive``: the seed design's connection manager — a FastAPI app with a dict of sockets per job
and ``await websocket.send_json(...)`` to each subscriber in turn (the event is re-encoded for
every client, and one slow socket holds up everyone behind it). No auth, no replay, no
backpressure: it is the floor the bridge is compared with.

``broadcast``: the single-frame ceiling — a ``websockets`` server that encodes each event once
and hands the same frame to ``websockets.broadcast()`` (no await per recipient, no batching,
no outbox: a stalled reader buffers without bound).

Both speak just enough of the bridge's protocol for the benchmark's clients: the client sends
``{"op": "subscribe", "job_id": ...}``, the server answers ``{"op": "subscribed"}`` and then
sends ``{"op": "event", "event": {...}}`` frames. Run one with
``python bench/naive_manager.py naive|broadcast --port P --redis-url URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from progress_bridge.events.records import with_position
from progress_bridge.store.keys import KeySpace

__all__ = ["create_naive_app", "serve_broadcast"]

log = logging.getLogger("bench.naive")

Entry = tuple[str, str, str, str]  # job_id, event id, epoch, payload


async def tail_feed(
    redis_url: str, prefix: str, shards: int, handle: Callable[[Entry], Awaitable[None] | None]
) -> None:
    """Tail every feed shard from now on and call ``handle`` for each entry, in order."""
    keys = KeySpace(prefix, shards)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=None)
    positions: dict[Any, Any] = {feed: "$" for feed in keys.all_feeds()}
    try:
        while True:
            reply: Any = await client.xread(positions, count=1000, block=1000)
            for feed, rows in reply or ():
                for entry_id, fields in rows:
                    positions[feed] = entry_id
                    # Feed fields (append.lua): j job, i event id, p epoch, e payload.
                    result = handle((fields["j"], fields["i"], fields["p"], fields["e"]))
                    if result is not None:
                        await result
    finally:
        await client.aclose()


def create_naive_app(redis_url: str, prefix: str = "pb", shards: int = 8) -> Any:
    """The seed design: a dict of sockets, ``await send_json`` to each in turn."""
    subscribers: dict[str, set[WebSocket]] = {}

    async def handle(entry: Entry) -> None:
        job_id, event_id, epoch, payload = entry
        event = json.loads(payload)
        event["id"], event["epoch"] = event_id, epoch
        for ws in list(subscribers.get(job_id, ())):
            try:
                await ws.send_json({"op": "event", "event": event})
            except Exception:
                subscribers.get(job_id, set()).discard(ws)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(tail_feed(redis_url, prefix, shards, handle))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        job_id: str | None = None
        try:
            while True:
                msg = await websocket.receive_json()
                if msg.get("op") == "subscribe":
                    job_id = str(msg["job_id"])
                    subscribers.setdefault(job_id, set()).add(websocket)
                    await websocket.send_json({"op": "subscribed", "job_id": job_id})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if job_id is not None:
                subscribers.get(job_id, set()).discard(websocket)

    return app


async def serve_broadcast(port: int, redis_url: str, prefix: str = "pb", shards: int = 8) -> None:
    """Pre-encoded frames handed to ``websockets.broadcast()``: the single-frame ceiling."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    subscribers: dict[str, set[ServerConnection]] = {}

    def handle(entry: Entry) -> None:
        job_id, event_id, epoch, payload = entry
        subs = subscribers.get(job_id)
        if subs:
            frame = '{"op":"event","event":' + with_position(payload, event_id, epoch) + "}"
            broadcast(subs, frame)

    async def handler(ws: ServerConnection) -> None:
        job_id: str | None = None
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("op") == "subscribe":
                    job_id = str(msg["job_id"])
                    subscribers.setdefault(job_id, set()).add(ws)
                    await ws.send('{"op":"subscribed"}')
        finally:
            if job_id is not None:
                subscribers.get(job_id, set()).discard(ws)

    feed = asyncio.create_task(tail_feed(redis_url, prefix, shards, handle))
    async with serve(
        handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096
    ) as server:
        try:
            await server.serve_forever()
        finally:
            feed.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["naive", "broadcast"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", default="pb")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.mode == "naive":
        import uvicorn

        from progress_bridge.bridge.server import ws_implementation

        # The same uvicorn WebSocket implementation as the bridge: the comparison is about the
        # fan-out design, not the protocol library.
        uvicorn.run(
            create_naive_app(args.redis_url, args.prefix, args.shards),
            host="127.0.0.1",
            port=args.port,
            ws=ws_implementation(),
            ws_per_message_deflate=False,
            log_level="warning",
            access_log=False,
            backlog=4096,
        )
    else:
        import uvloop

        # Clients that vanish mid-frame are part of the benchmark, not errors worth a traceback.
        logging.getLogger("websockets.server").setLevel(logging.CRITICAL)
        uvloop.run(serve_broadcast(args.port, args.redis_url, args.prefix, args.shards))


if __name__ == "__main__":
    main()
