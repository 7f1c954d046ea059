"""``/ws`` as a raw ASGI app: the handshake checks, then the connection, served one of two ways.

Why raw ASGI and not Starlette's ``WebSocket``: a held connection then costs only what the
protocol needs (no per-connection request object, no per-message wrapper coroutines), and the
uvicorn connection behind it is found through an ASGI scope extension that the bridge's own
uvicorn protocol sets (:mod:`.uvicorn_ws`), not by digging through wrappers. The router still
mounts it (``WebSocketRoute("/ws", endpoint)``), so any FastAPI app includes it as before.

After the handshake:

- **Under the bridge's uvicorn protocol** (``progress-bridge serve``), the connection is attached
  to the protocol (:meth:`~progress_bridge.bridge.direct.DirectWriter.attach`) and the ASGI app
  returns: client frames, flow control and the disconnect reach the
  :class:`~progress_bridge.bridge.connection.Connection` by calls, so a held connection keeps no
  coroutine (of this app, or of the middleware and routing layers around it) and no task.
  Middleware therefore sees the handshake of ``/ws`` only, not the messages that follow.
- **Under any other server**, a short loop: ``await receive()``, feed the connection, carry out
  the subscribes it returns. It ends when the server reports the disconnect, which it does
  after the close the connection sends when it decides to close.

This object is also each connection's :class:`~progress_bridge.bridge.connection.Handler`: one
per bridge, so a connection holds no closure of its own.
"""

from __future__ import annotations

import logging
import time
from typing import cast
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from ..exceptions import AuthError
from .auth import origin_allowed
from .connection import Connection
from .core import (
    Ack,
    ClientOp,
    CloseCode,
    Session,
    SubscribeJob,
    SubscribeRoom,
    Unsubscribe,
    negotiate,
)
from .direct import DirectWriter
from .metrics import BridgeMetrics
from .service import Bridge
from .sinks import AsgiSend, AsgiSink

__all__ = ["SHORTCUT", "WebSocketEndpoint"]

#: ASGI scope extension: a router in front of the app (``server.WebSocketShortcut``) asking the
#: endpoint to say which path reaches it, so later handshakes there can skip the app's routing.
SHORTCUT = "progress_bridge.shortcut"

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
        self.metrics: BridgeMetrics = bridge.metrics
        self.close_grace_s = bridge.settings.bridge_close_grace_s
        self.close_linger_s = bridge.settings.bridge_close_linger_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        shortcut = scope["extensions"].get(SHORTCUT) if "extensions" in scope else None
        if shortcut is not None:
            shortcut.learn(scope["path"], self)
        bridge = self.bridge
        if bridge.hub is None:
            await bridge.start()
        hub, metrics = bridge.hub, self.metrics
        assert hub is not None
        if (await receive())["type"] != "websocket.connect":
            return
        origin = _header(scope, b"origin")
        secure = scope.get("scheme") == "wss"
        host = _header(scope, b"host")
        if origin is not None and not origin_allowed(
            origin, host, secure, bridge.settings.allowed_origins
        ):
            log.info("refused cross-site handshake", extra={"origin": origin})
            metrics.closed.labels("403").inc()
            await send({"type": "websocket.close", "code": CloseCode.FORBIDDEN})  # HTTP 403
            return
        fmt, echo, token = negotiate(scope.get("subprotocols", ()))
        token = token or _query_token(scope)
        try:
            principal = bridge.authority.verify(token)
        except AuthError as exc:
            # Accepted, then closed: a browser cannot read an HTTP status, but a close code.
            metrics.closed.labels(str(int(CloseCode.UNAUTHENTICATED))).inc()
            await send({"type": "websocket.accept", "subprotocol": echo})
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
            await send({"type": "websocket.accept", "subprotocol": echo})
            await send({"type": "websocket.close", "code": refused[0], "reason": refused[1]})
            return

        now = time.monotonic()
        expires_at = None
        if principal.expires_at is not None:
            expires_at = now + (principal.expires_at - time.time())
        session = Session(principal, fmt, bridge.limits, now, expires_at=expires_at)
        direct = DirectWriter.from_scope(scope)
        conn = Connection(
            session,
            self,
            direct=direct,
            sink=None if direct is not None else AsgiSink(cast(AsgiSend, send)),
            client=scope.get("client"),
        )
        if direct is not None:
            # The 101 answer and the hello frame in one write; then the connection is served
            # by calls (frames that came meanwhile are handled now, in order).
            if not direct.accept(echo, session.take().frames):
                return  # the peer left during the handshake
            hub.add(conn)
            self._opened(conn)
            direct.attach(conn)
            return
        await send({"type": "websocket.accept", "subprotocol": echo})
        hub.add(conn)
        self._opened(conn)
        conn.flush()  # hello
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break  # the peer left, or the server closes (after our close, too)
                data = message.get("text")
                op = conn.handle(data if data is not None else message.get("bytes") or b"")
                if op is not None:
                    await self.carry_out(conn, op)
        except Exception:
            log.exception("connection failed", extra={"conn": conn.id})
            session.close(CloseCode.INTERNAL, "internal error")
            conn.flush()
        finally:
            await conn.ended()

    @staticmethod
    def _opened(conn: Connection) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "connection opened",
                extra={
                    "conn": conn.id,
                    "user": conn.session.principal.user,
                    "format": conn.session.format.value,
                },
            )

    # -- what connections ask of their bridge (connection.Handler) --------------------------

    async def carry_out(self, conn: Connection, op: ClientOp) -> None:
        """A subscribe or unsubscribe (store reads), then its answer written."""
        assert isinstance(op, SubscribeJob | SubscribeRoom | Unsubscribe)
        await self.bridge.carry_out(conn, op)
        hub = self.bridge.hub
        if hub is not None:
            hub.flush((conn,))  # the answer, written here unless the socket lags

    def observe_ack(self, session: Session, op: Ack) -> None:
        self.bridge.observe_ack(session, op)

    def finished(self, conn: Connection) -> None:
        hub = self.bridge.hub
        if hub is not None:
            hub.remove(conn)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "connection closed",
                extra={
                    "conn": conn.id,
                    "user": conn.session.principal.user,
                    "code": conn.session.close_code,
                },
            )
