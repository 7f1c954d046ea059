"""``/ws`` as a raw ASGI app: the handshake checks, then a short loop around the sans-I/O
:class:`~progress_bridge.bridge.core.Session`.

Why raw ASGI and not Starlette's ``WebSocket``: a held connection then costs only what the
protocol needs (no per-connection request object, no per-message wrapper coroutines), and the
uvicorn connection behind it is found through an ASGI scope extension that the bridge's own
uvicorn protocol sets (:mod:`.uvicorn_ws`), not by digging through wrappers. The router still
mounts it (``WebSocketRoute("/ws", endpoint)``), so any FastAPI app includes it as before.

The loop: feed the session client frames, carry out the subscribes it returns (store reads, in
:class:`~progress_bridge.bridge.service.Bridge`), and let the connection write what it queues
(:meth:`~progress_bridge.bridge.connection.Connection.flush`: at once when the socket keeps up,
else through the connection's writer task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from ..exceptions import AuthError
from .auth import origin_allowed
from .connection import Connection
from .core import Ack, CloseCode, Pong, Session, negotiate
from .direct import DirectWriter
from .service import Bridge

__all__ = ["WebSocketEndpoint"]

log = logging.getLogger("progress_bridge.bridge")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _query_token(scope: Scope) -> str | None:
    raw = scope.get("query_string", b"")
    if b"token=" not in raw:
        return None
    values = parse_qs(raw.decode("latin-1")).get("token")
    return values[0] if values else None


class WebSocketEndpoint:
    """The ASGI app of ``/ws`` for one :class:`Bridge` (a class, so Starlette's
    ``WebSocketRoute`` calls it as an ASGI app, without a ``WebSocket`` wrapper)."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        bridge = self.bridge
        await bridge.start()
        assert bridge.hub is not None
        hub, metrics = bridge.hub, bridge.metrics
        if (await receive())["type"] != "websocket.connect":
            return
        origin = _header(scope, b"origin")
        secure = scope.get("scheme") == "wss"
        if not origin_allowed(
            origin, _header(scope, b"host"), secure, bridge.settings.allowed_origins
        ):
            log.info("refused cross-site handshake", extra={"origin": origin})
            metrics.closed.labels("403").inc()
            await send({"type": "websocket.close", "code": CloseCode.FORBIDDEN})  # HTTP 403
            return
        fmt, echo, token = negotiate(scope.get("subprotocols", ()))
        token = token or _query_token(scope)
        await send({"type": "websocket.accept", "subprotocol": echo})
        try:
            principal = bridge.authority.verify(token)
        except AuthError as exc:
            metrics.closed.labels(str(int(CloseCode.UNAUTHENTICATED))).inc()
            await send(
                {
                    "type": "websocket.close",
                    "code": CloseCode.UNAUTHENTICATED,
                    "reason": str(exc)[:120],
                }
            )
            return
        refused = hub.admit(principal)
        if refused is not None:
            metrics.closed.labels(str(int(refused[0]))).inc()
            await send({"type": "websocket.close", "code": refused[0], "reason": refused[1]})
            return

        now = time.monotonic()
        expires_at = None
        if principal.expires_at is not None:
            expires_at = now + (principal.expires_at - time.time())
        session = Session(principal, fmt, bridge.limits, now, expires_at=expires_at)

        async def send_frame(frame: str | bytes) -> None:
            if frame.__class__ is str:
                await send({"type": "websocket.send", "text": frame})
            else:
                await send({"type": "websocket.send", "bytes": frame})

        async def close(code: int, reason: str) -> None:
            await send({"type": "websocket.close", "code": code, "reason": reason})

        client = scope.get("client")
        conn = Connection(
            session,
            send_frame,
            close,
            remote=f"{client[0]}:{client[1]}" if client else "",
            metrics=metrics,
            close_grace_s=bridge.settings.bridge_close_grace_s,
            close_linger_s=bridge.settings.bridge_close_linger_s,
            direct=DirectWriter.from_scope(scope),
        )
        hub.add(conn)
        log.info(
            "connection opened",
            extra={"conn": conn.id, "user": principal.user, "format": fmt.value},
        )
        receiving: asyncio.Future[Any] | None = None
        peer_gone = False
        try:
            while not conn.done.done():
                if receiving is None:
                    receiving = asyncio.ensure_future(receive())
                await asyncio.wait({receiving, conn.done}, return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    break
                message = receiving.result()
                receiving = None
                if message["type"] == "websocket.disconnect":
                    peer_gone = True  # or the server is shutting down: nothing to linger for
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                op = session.receive(data, time.monotonic())
                if session.outbox_depth or session.close_code is not None:
                    hub.flush((conn,))  # an error frame or a close: written or handed over
                if isinstance(op, Ack):
                    bridge.observe_ack(session, op)
                    continue
                if op is None or isinstance(op, Pong):
                    continue
                await bridge.carry_out(conn, op)
                hub.flush((conn,))  # the answer, written here unless the writer is busy
        except Exception:
            log.exception("connection failed", extra={"conn": conn.id})
            session.close(CloseCode.INTERNAL, "internal error")
            conn.wake()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(
                    asyncio.shield(conn.done), bridge.settings.bridge_close_grace_s
                )
        finally:
            if receiving is not None:
                receiving.cancel()
            hub.remove(conn)
            if not conn.writer.done() and session.close_code is not None and not peer_gone:
                # Closing: let the writer get the close frame out (to a stalled reader too,
                # should it read again), within the linger bound.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(conn.writer), conn.linger)
            if not conn.writer.done():
                conn.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.writer
            log.info(
                "connection closed",
                extra={"conn": conn.id, "user": principal.user, "code": session.close_code},
            )
