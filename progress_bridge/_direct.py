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
permessage-deflate is fine when negotiated without server context takeover (what
:mod:`._uvicorn_ws` does): each message is then compressed on its own, and the compressed frame
is shared too, per window size. Anything else (another server or implementation, deflate with
context takeover; a TLS transport is fine) gets None and the connection keeps the ASGI ``send``.
:meth:`DirectWriter.ready` is checked before every write: no close sent or received, and the
transport not closing and not paused for flow control — when it is paused, the caller falls
back to the ASGI ``send``, which waits for the socket to drain, so a slow socket is detected
and handled as before.
Writes through this object and through uvicorn go to the same transport in call order.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import State

__all__ = ["COMPRESS_SETTINGS", "DirectWriter", "ws_frame"]

#: zlib settings of compressed frames (uvicorn's, and ``_uvicorn_ws``'s).
COMPRESS_SETTINGS = {"memLevel": 5}

_UVICORN_SANSIO = (
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "WebSocketsSansIOProtocol",
)


def ws_frame(payload: str | bytes, deflate_bits: int = 0) -> bytes:
    """One unmasked, unfragmented server frame: text for ``str``, binary for ``bytes``.

    ``deflate_bits``: compressed for permessage-deflate without server context takeover with
    that window (RFC 7692 §7.2.1: the message alone, sync-flushed, its empty-block tail cut,
    RSV1 set) — the same bytes for every connection that negotiated it. 0: not compressed.
    """
    if isinstance(payload, str):
        data = payload.encode()
        first = 0x81  # FIN + text
    else:
        data = payload
        first = 0x82  # FIN + binary
    if deflate_bits:
        encoder = zlib.compressobj(wbits=-deflate_bits, memLevel=COMPRESS_SETTINGS["memLevel"])
        data = (encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH))[:-4]
        first |= 0x40  # RSV1: compressed
    n = len(data)
    if n < 126:
        return bytes((first, n)) + data
    if n < 65_536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + data
    return bytes((first, 127)) + n.to_bytes(8, "big") + data


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
    def attach(cls, asgi_send: Any) -> DirectWriter | None:
        """A writer for the connection behind this ASGI ``send``, or None if it has none."""
        proto = getattr(asgi_send, "__self__", None)
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
