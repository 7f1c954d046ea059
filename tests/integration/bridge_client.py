"""A small test client for the bridge: real ``websockets`` connections, polling with deadlines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from progress_bridge.bridge.core.frames import server_frame_adapter
from progress_bridge.events.ids import parse_stream_id
from tests.conftest import TIMEOUT

__all__ = ["Client", "open_client"]


class Client:
    """Wraps one connection: decodes frames (JSON or msgpack) and flattens event batches."""

    def __init__(self, ws: ClientConnection, fmt: str) -> None:
        self.ws = ws
        self.fmt = fmt
        self.frames: list[dict[str, Any]] = []  # every frame received, in order
        self.events: list[dict[str, Any]] = []  # every event received, batches flattened
        self.hello: dict[str, Any] | None = None

    async def send(self, obj: dict[str, Any]) -> None:
        if self.fmt == "msgpack":
            await self.ws.send(msgpack.packb(obj))
        else:
            await self.ws.send(json.dumps(obj))

    async def recv(self, wait_s: float = TIMEOUT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), wait_s)
        frame: dict[str, Any]
        if isinstance(raw, bytes):
            assert self.fmt == "msgpack", "binary frame on a JSON connection"
            frame = msgpack.unpackb(raw)
        else:
            assert self.fmt == "json", "text frame on a msgpack connection"
            frame = json.loads(raw)
        # Every frame the bridge sends must be one the protocol's models describe (the models
        # the TypeScript types are generated from): any drift fails the test that saw it.
        server_frame_adapter.validate_python(frame)
        self.frames.append(frame)
        self.events.extend(events_in(frame))
        return frame

    async def recv_until(
        self, done: Callable[[dict[str, Any]], bool], wait_s: float = TIMEOUT
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first one ``done`` accepts (pings skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        got: list[dict[str, Any]] = []
        while True:
            frame = await self.recv(max(0.0, deadline - loop.time()))
            if frame.get("op") == "ping":
                continue
            got.append(frame)
            if done(frame):
                return got

    async def op(self, name: str, wait_s: float = TIMEOUT) -> dict[str, Any]:
        frames = await self.recv_until(lambda f: f.get("op") == name, wait_s)
        return frames[-1]

    async def events_until(
        self, job_id: str, last_id: str, wait_s: float = TIMEOUT
    ) -> list[dict[str, Any]]:
        """Every event this client has received, once one of ``job_id`` with id >= ``last_id``
        has arrived."""
        target = parse_stream_id(last_id)

        def reached(events: list[dict[str, Any]]) -> bool:
            return any(e["job_id"] == job_id and parse_stream_id(e["id"]) >= target for e in events)

        if not reached(self.events):
            await self.recv_until(lambda frame: reached(events_in(frame)), wait_s)
        return self.events

    async def closed_code(self, wait_s: float = TIMEOUT) -> int | None:
        """Read until the server closes; return its close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        try:
            while True:
                await self.recv(max(0.0, deadline - loop.time()))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def close(self) -> None:
        await self.ws.close()


def events_in(frame: dict[str, Any]) -> list[dict[str, Any]]:
    if frame.get("op") == "event":
        return [frame["event"]]
    if frame.get("op") == "batch":
        return list(frame["events"])
    return []


async def open_client(
    ws_url: str,
    token: str | None,
    *,
    fmt: str = "json",
    origin: str | None = None,
    query_token: bool = False,
    expect_hello: bool = True,
    **kwargs: Any,
) -> Client:
    protocols = [Subprotocol(f"progress.v1.{fmt}")]
    url = ws_url
    if token is not None and query_token:
        url = f"{ws_url}?token={token}"
    elif token is not None:
        protocols.append(Subprotocol(f"token.{token}"))
    ws = await connect(
        url,
        subprotocols=protocols,
        origin=Origin(origin) if origin else None,
        open_timeout=TIMEOUT,
        **kwargs,
    )
    client = Client(ws, fmt)
    if expect_hello:
        client.hello = await client.op("hello")
    return client
