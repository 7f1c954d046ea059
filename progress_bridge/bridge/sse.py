"""``GET /sse``: the same events over Server-Sent Events, for networks that block WebSocket.

Why: some proxies and corporate networks refuse the WebSocket upgrade but pass a long HTTP
response. This endpoint speaks the same protocol one way: each server frame (``subscribed``,
``event``, ``batch``, ``error``...) is one SSE message whose ``data`` is the frame's JSON, so a
client parses it exactly like a WebSocket frame. The connection is a
:class:`~progress_bridge.bridge.core.Session` and a
:class:`~progress_bridge.bridge.connection.Connection` like a WebSocket's, served by the same
hub — same authorization (before anything is sent), limits, coalescing and slow-consumer bound.

Resuming: every message that moves a job's position carries an SSE ``id``: ``<epoch>:<id>`` when
the stream watches one job, ``m:<base64url JSON {job: "<epoch>:<id>"}>`` for several jobs or a
room. ``EventSource`` sends the last one back as ``Last-Event-ID`` when it reconnects, and the
bridge resumes every job from it — gap-free and duplicate-free, or ``recovered: false`` with a
snapshot, as on the WebSocket. A stream the bridge ends (slow consumer, token expired, restart)
ends with ``{"op": "close", "code": …, "reason": …}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse

from ..events.ids import parse_stream_id
from ..events.schema import JOB_ID_PATTERN
from ..exceptions import AuthError, FrameError, StoreRejected, StreamUnavailable
from .auth import origin_allowed
from .connection import Connection
from .core import (
    Ack,
    ClientOp,
    ErrorCode,
    Session,
    SubscribeJob,
    SubscribeRoom,
    WireFormat,
)
from .core.client_ops import MAX_ROOM_POSITIONS, parse_client_frame
from .core.frames import SseCloseFrame
from .service import Bridge

__all__ = ["decode_last_event_id", "encode_positions", "sse_endpoint"]

log = logging.getLogger("progress_bridge.bridge")

_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
#: Marker of the stream's end in the frame queue.
_END = object()


def encode_positions(positions: dict[str, tuple[str, str]], single: str | None) -> str:
    """The SSE ``id`` for the stream's positions (see the module docstring)."""
    if single is not None:
        epoch, last_id = positions[single]
        return f"{epoch}:{last_id}"
    packed = json.dumps(
        {job: f"{e}:{i}" for job, (e, i) in positions.items()}, separators=(",", ":")
    )
    return "m:" + base64.urlsafe_b64encode(packed.encode()).decode().rstrip("=")


def decode_last_event_id(value: str, jobs: list[str]) -> dict[str, tuple[str, str]]:
    """Positions from a ``Last-Event-ID`` (``jobs``: the stream's jobs, for a single-job id).

    Raises:
        ValueError: the value is not an id this endpoint sent.
    """
    if value.startswith("m:"):
        raw = value[2:]
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"Last-Event-ID is not a position map: {exc}") from None
        if not isinstance(data, dict) or len(data) > MAX_ROOM_POSITIONS:
            raise ValueError("Last-Event-ID is not a position map")
        return {job: _position(pos) for job, pos in data.items() if _JOB_ID_RE.match(str(job))}
    if len(jobs) != 1:
        raise ValueError("a single position needs exactly one job_id")
    return {jobs[0]: _position(value)}


def _position(value: Any) -> tuple[str, str]:
    if not isinstance(value, str) or ":" not in value:
        raise ValueError("a position is '<epoch>:<id>'")
    epoch, _, last_id = value.rpartition(":")
    if not epoch:
        raise ValueError("a position is '<epoch>:<id>'")
    parse_stream_id(last_id)
    return epoch, last_id


def _refusal(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status)


class _SseHandler:
    """A stream's :class:`~progress_bridge.bridge.connection.Handler`: it only ever ends (the
    stream is one way: its subscribes are carried out by :func:`sse_endpoint` itself)."""

    __slots__ = ("bridge", "close_grace_s", "close_linger_s", "metrics")

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.metrics = bridge.metrics
        self.close_grace_s = bridge.settings.bridge_close_grace_s
        self.close_linger_s = bridge.settings.bridge_close_linger_s

    async def carry_out(self, conn: Connection, op: ClientOp) -> None:
        """Never called: a stream reads no client frames."""

    def observe_ack(self, session: Session, op: Ack) -> None:
        """A stream sends no acks."""

    def finished(self, conn: Connection) -> None:
        if self.bridge.hub is not None:
            self.bridge.hub.remove(conn)


class _SseStream:
    """Turns the session's frames into SSE messages with resumable ids (the connection's
    :class:`~progress_bridge.bridge.sinks.Sink`)."""

    def __init__(self, jobs: list[str], positions: dict[str, tuple[str, str]]) -> None:
        self.single = jobs[0] if len(jobs) == 1 else None
        self.positions = dict(positions)
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def send(self, frame: str | bytes) -> None:
        await self.queue.put(frame)

    async def close(self, code: int, reason: str) -> None:
        await self.queue.put(SseCloseFrame(op="close", code=code, reason=reason))
        await self.queue.put(_END)

    def message(self, frame: str) -> ServerSentEvent:
        data = json.loads(frame)
        moved = self._advance(data)
        event_id = encode_positions(self.positions, self.single) if moved else None
        return ServerSentEvent(data=frame, id=event_id)

    def _advance(self, data: dict[str, Any]) -> bool:
        op = data.get("op")
        if op == "event":
            events = [data["event"]]
        elif op == "batch":
            events = data["events"]
        elif op == "subscribed":
            snaps = [data["snapshot"]] if data.get("snapshot") else []
            snaps += data.get("jobs") or []
            snaps += [r["snapshot"] for r in data.get("replays") or () if r.get("snapshot")]
            for snap in snaps:
                self.positions[snap["job_id"]] = (snap["epoch"], snap["last_id"])
            return bool(snaps) and (self.single is None or self.single in self.positions)
        else:
            return False
        for event in events:
            self.positions[event["job_id"]] = (event["epoch"], event["id"])
        return self.single is None or self.single in self.positions

    async def messages(self) -> AsyncIterator[ServerSentEvent]:
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            if isinstance(item, SseCloseFrame):
                yield ServerSentEvent(data=item.model_dump_json())
            else:
                yield self.message(item if isinstance(item, str) else item.decode())


async def sse_endpoint(bridge: Bridge, request: Request) -> Response:
    """Serve one SSE stream (query: ``job_id`` (repeatable) or ``room``; ``token``)."""
    await bridge.start()
    assert bridge.hub is not None
    hub, settings = bridge.hub, bridge.settings
    headers = request.headers
    if not origin_allowed(
        headers.get("origin"),
        headers.get("host"),
        request.url.scheme == "https",
        settings.allowed_origins,
    ):
        return _refusal(403, "forbidden_origin", "cross-site requests to /sse are not allowed")
    token = request.query_params.get("token")
    auth = headers.get("authorization", "")
    if not token and auth.lower().startswith("bearer "):
        token = auth[7:]
    try:
        principal = bridge.authority.verify(token)
    except AuthError as exc:
        return _refusal(401, "unauthenticated", str(exc))
    jobs = request.query_params.getlist("job_id")
    room = request.query_params.get("room")
    if bool(jobs) == bool(room):
        return _refusal(400, ErrorCode.BAD_FRAME, "give job_id (one or more) or room, not both")
    try:
        ops: list[SubscribeJob | SubscribeRoom] = _subscribes(jobs, room, headers, request)
    except (FrameError, ValueError) as exc:
        return _refusal(400, ErrorCode.INVALID_POSITION, str(exc))
    if len(jobs) == 1:
        # One job: refused or unknown is an HTTP status (EventSource does not retry those).
        first = ops[0]
        assert isinstance(first, SubscribeJob)
        try:
            code, message = await bridge.authorize_job(principal, first)
        except (StreamUnavailable, StoreRejected) as exc:
            return _refusal(503, ErrorCode.UNAVAILABLE, str(exc))
        if code is not None:
            return _refusal(404 if code == ErrorCode.NOT_FOUND else 403, code, message)
    refused = hub.admit(principal)
    if refused is not None:
        return _refusal(429, "too_many_connections", refused[1])
    stream = _SseStream(jobs, {})
    now = time.monotonic()
    expires_at = None
    if principal.expires_at is not None:
        expires_at = now + (principal.expires_at - time.time())
    session = Session(
        principal, WireFormat.JSON, bridge.limits, now, expires_at=expires_at, one_way=True
    )
    session.take()  # the hello frame: an SSE client learns the protocol from the route
    client = request.client
    conn = Connection(
        session,
        _SseHandler(bridge),
        sink=stream,
        client=(client.host, client.port) if client else None,
    )
    hub.add(conn)

    async def run() -> AsyncIterator[ServerSentEvent]:
        try:
            for op in ops:
                await bridge.carry_out(conn, op)
            hub.flush((conn,))
            async for message in stream.messages():
                yield message
        finally:
            # The stream ended (after its close message) or the client left: nothing to linger
            # for. Leaves the hub, and a writer stuck on the full queue is reaped.
            await conn.ended(linger=False)

    return EventSourceResponse(
        run(),
        ping=settings.bridge_heartbeat_s,
        send_timeout=settings.bridge_outbox_max_age_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _subscribes(
    jobs: list[str], room: str | None, headers: Any, request: Request
) -> list[SubscribeJob | SubscribeRoom]:
    """The subscribes a stream's query asks for, with positions from ``Last-Event-ID``;
    ``presence=true`` asks for who watches each job (as the WebSocket subscribe's ``presence``)."""
    presence = request.query_params.get("presence", "false")
    if presence not in ("true", "false"):
        raise ValueError("presence must be true or false")
    last = headers.get("last-event-id") or request.query_params.get("last_event_id")
    positions = decode_last_event_id(last, jobs) if last else {}
    if room is not None:
        frame: dict[str, Any] = {"op": "subscribe", "room": room}
        if positions:
            frame["positions"] = {j: {"epoch": e, "last_id": i} for j, (e, i) in positions.items()}
        op = parse_client_frame(json.dumps(frame))
        assert isinstance(op, SubscribeRoom)
        return [op]
    if len(jobs) > MAX_ROOM_POSITIONS:
        raise ValueError(f"at most {MAX_ROOM_POSITIONS} job_id per stream")
    ops: list[SubscribeJob | SubscribeRoom] = []
    for job in jobs:
        frame = {"op": "subscribe", "job_id": job, "ref": job, "presence": presence == "true"}
        if job in positions:
            frame.update(epoch=positions[job][0], last_id=positions[job][1])
        op = parse_client_frame(json.dumps(frame))
        assert isinstance(op, SubscribeJob)
        ops.append(op)
    return ops
