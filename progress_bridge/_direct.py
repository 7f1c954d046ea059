"""Pre-framed writes: an event's WebSocket frame built once, written as is to every socket.

Why: at a few events per second nothing batches, so every delivery is one frame, and going
through the ASGI ``send`` costs a coroutine, a message dict, uvicorn's checks and the
``websockets`` framer per socket — about as much CPU as the ``write()`` syscall itself. A
server frame is not masked (RFC 6455 §5.1), so without a per-connection extension the bytes of
one event's frame are identical for every subscriber: build them once (:func:`ws_frame`,
cached on the :class:`~progress_bridge.protocol.FeedEntry`), and hand them straight to each
socket's transport, as Centrifugo's and gorilla/websocket's prepared messages do.

ASGI has no way to write bytes to the socket, so :meth:`DirectWriter.attach` recognises
uvicorn's ``websockets-sansio`` protocol object behind the ASGI ``send`` and uses its transport.
Anything else (another server or implementation, permessage-deflate negotiated, a TLS transport
is fine) gets None and the connection keeps the ASGI ``send``. :meth:`DirectWriter.ready` is
checked before every write: no close sent or received, and the transport not closing and not
paused for flow control — when it is paused, the caller falls back to the ASGI ``send``,
which waits for the socket to drain, so a slow socket is detected and handled as before.
Writes through this object and through uvicorn go to the same transport in call order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.protocol import State

__all__ = ["DirectWriter", "ws_frame"]

_UVICORN_SANSIO = (
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "WebSocketsSansIOProtocol",
)


def ws_frame(payload: str | bytes) -> bytes:
    """One unmasked, unfragmented server frame: text for ``str``, binary for ``bytes``."""
    if isinstance(payload, str):
        data = payload.encode()
        first = 0x81  # FIN + text
    else:
        data = payload
        first = 0x82  # FIN + binary
    n = len(data)
    if n < 126:
        return bytes((first, n)) + data
    if n < 65_536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + data
    return bytes((first, 127)) + n.to_bytes(8, "big") + data


class DirectWriter:
    """Writes pre-built frames to one uvicorn ``websockets-sansio`` connection's transport."""

    __slots__ = ("_proto", "_transport", "_ws", "frames")

    def __init__(self, proto: Any) -> None:
        self._proto = proto
        self._ws = proto.conn
        self._transport: asyncio.Transport = proto.transport
        #: Frames written here (the rest went through the ASGI ``send``).
        self.frames = 0

    @classmethod
    def attach(cls, asgi_send: Any) -> DirectWriter | None:
        """A writer for the connection behind this ASGI ``send``, or None if it has none."""
        proto = getattr(asgi_send, "__self__", None)
        kind = type(proto)
        if (kind.__module__, kind.__qualname__) != _UVICORN_SANSIO:
            return None
        conn = getattr(proto, "conn", None)
        if (
            conn is None
            or getattr(conn, "extensions", None)  # per-message state: frames differ per socket
            or getattr(proto, "transport", None) is None
            or not isinstance(getattr(proto, "writable", None), asyncio.Event)
            or not getattr(proto, "handshake_complete", False)
        ):
            return None
        return cls(proto)

    def ready(self) -> bool:
        """True when a frame may be written now without waiting (else use the ASGI send).

        Three checks, on the hot path of every delivery: the transport is not paused for flow
        control (uvicorn's ``writable``); the WebSocket is OPEN — uvicorn moves it to CLOSING
        whenever it sends or receives a close, which is when it sets ``close_sent``; and the
        transport is not closing, which it is from the moment the peer is gone
        (``disconnected``).
        """
        return (
            self._proto.writable.is_set()
            and self._ws.state is State.OPEN
            and not self._transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        self._transport.write(data)
        self.frames += 1
