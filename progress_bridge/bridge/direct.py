"""Pre-framed writes: an event's WebSocket frame built once, written as is to every socket.

Why: at a few events per second nothing batches, so every delivery is one frame, and going
through the ASGI ``send`` costs a coroutine, a message dict, uvicorn's checks and the
``websockets`` framer per socket — about as much CPU as the ``write()`` syscall itself. A
server frame is not masked (RFC 6455 §5.1), so without a per-connection extension the bytes of
one event's frame are identical for every subscriber: build them once
(:func:`~progress_bridge.bridge.core.wire.ws_frame`, cached on the
:class:`~progress_bridge.bridge.core.FeedEntry`), and hand them straight to each socket's
transport, as Centrifugo's and gorilla/websocket's prepared messages do.

ASGI has no way to write bytes to the socket, so the bridge's uvicorn protocol
(:mod:`.uvicorn_ws`) publishes itself in the connection's ASGI scope under the extension
:data:`EXTENSION`, and :meth:`DirectWriter.from_scope` uses its transport.
permessage-deflate is fine when negotiated without server context takeover (what
:mod:`._uvicorn_ws` does): each message is then compressed on its own, and the compressed frame
is shared too, per window size. Anything else (another server or implementation, deflate with
context takeover; a server without the extension; a TLS transport is fine) gets None and the
connection keeps the ASGI ``send``.
:meth:`DirectWriter.ready` is checked before every write: no close sent or received, and the
transport not closing and not paused for flow control — when it is paused, the caller falls
back to the ASGI ``send``, which waits for the socket to drain, so a slow socket is detected
and handled as before.
Writes through this object and through uvicorn go to the same transport in call order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import State

__all__ = ["EXTENSION", "DirectWriter"]

#: The ASGI scope extension holding a weak reference to the connection's uvicorn protocol.
EXTENSION = "progress_bridge.transport"

_UVICORN_SANSIO = (
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "WebSocketsSansIOProtocol",
)


class DirectWriter:
    """Writes pre-built frames to one uvicorn ``websockets-sansio`` connection's transport."""

    __slots__ = ("_proto", "_transport", "_ws", "deflate_bits", "frames")

    def __init__(self, proto: Any, deflate_bits: int = 0) -> None:
        self._proto = proto
        self._ws = proto.conn
        self._transport: asyncio.Transport = proto.transport
        #: The window of this connection's permessage-deflate without server context takeover
        #: (frames are compressed for it), or 0: frames go uncompressed.
        self.deflate_bits = deflate_bits
        #: Frames written here (the rest went through the ASGI ``send``).
        self.frames = 0

    @classmethod
    def from_scope(cls, scope: Any) -> DirectWriter | None:
        """A writer for the connection of this ASGI scope (once accepted), or None if it has
        none."""
        ref = (scope.get("extensions") or {}).get(EXTENSION)
        proto = ref() if callable(ref) else None
        if not any((k.__module__, k.__qualname__) == _UVICORN_SANSIO for k in type(proto).__mro__):
            return None
        conn = getattr(proto, "conn", None)
        if (
            conn is None
            or getattr(proto, "transport", None) is None
            or not isinstance(getattr(proto, "writable", None), asyncio.Event)
            or not getattr(proto, "handshake_complete", False)
        ):
            return None
        extensions = list(getattr(conn, "extensions", None) or ())
        if not extensions:
            return cls(proto)
        # Only permessage-deflate without server context takeover keeps messages independent
        # of each other (progress_bridge._uvicorn_ws negotiates it); any other extension state
        # makes each connection's frames its own.
        ext = extensions[0]
        if (
            len(extensions) == 1
            and isinstance(ext, PerMessageDeflate)
            and ext.local_no_context_takeover
        ):
            return cls(proto, ext.local_max_window_bits)
        return None

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
