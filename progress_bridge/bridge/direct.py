"""Pre-framed writes: an event's WebSocket frame built once, written as is to every socket —
and, under the bridge's own uvicorn protocol, the whole connection served without ASGI.

Why pre-built frames: at a few events per second nothing batches, so every delivery is one
frame, and going through the ASGI ``send`` costs a coroutine, a message dict, uvicorn's checks
and the ``websockets`` framer per socket — about as much CPU as the ``write()`` syscall itself.
A server frame is not masked (RFC 6455 §5.1), so without a per-connection extension the bytes
of one event's frame are identical for every subscriber: build them once
(:func:`~progress_bridge.bridge.core.wire.ws_frame`, cached on the
:class:`~progress_bridge.bridge.core.FeedEntry`), and hand them straight to each socket's
transport, as Centrifugo's and gorilla/websocket's prepared messages do.

ASGI has no way to write bytes to the socket, so the bridge's uvicorn protocol
(:mod:`.uvicorn_ws`) publishes itself in the connection's ASGI scope under the extension
:data:`EXTENSION` (a weak reference: the protocol holds the scope), and
:meth:`DirectWriter.from_scope` uses its transport. permessage-deflate is fine when negotiated
without server context takeover (what :mod:`.uvicorn_ws` does): each message is then compressed
on its own, and the compressed frame is shared too, per window size. Anything else (another
server or implementation, deflate with context takeover) gets None and the connection keeps the
ASGI ``send``.

The same protocol also takes a *listener* (:meth:`DirectWriter.attach`): client frames, the
transport's flow control and the disconnect are then delivered to the connection by plain
calls, and the ASGI app may return once the handshake is done. A held connection then costs no
coroutine frames, no task and no queue (``docs/benchmarks.md``, *Connections*).

Flow control: :meth:`DirectWriter.ready` is False while the transport is paused (its buffer past
the high-water mark); the connection then queues in its outbox (where progress updates
coalesce) and writes again when the protocol reports the transport drained. What the transport
buffers counts toward the slow-consumer bound (:meth:`DirectWriter.buffered`).
"""

from __future__ import annotations

import asyncio
import fcntl
import sys
from typing import Any, Protocol

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import State

from .core import ws_frame

__all__ = ["EXTENSION", "DirectWriter", "Listener"]

#: The ASGI scope extension holding a weak reference to the connection's uvicorn protocol.
EXTENSION = "progress_bridge.transport"

#: Linux's ioctl for the bytes a TCP socket holds that the peer has not acknowledged.
SIOCOUTQ = 0x5411
_INT = b"\0\0\0\0"

_UVICORN_SANSIO = (
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "WebSocketsSansIOProtocol",
)


_SANSIO_CLASSES: dict[type, bool] = {}


def _is_sansio(cls: type) -> bool:
    """A subclass of uvicorn's ``websockets-sansio`` protocol (the answer kept per class)."""
    known = _SANSIO_CLASSES.get(cls)
    if known is None:
        known = _SANSIO_CLASSES[cls] = any(
            (k.__module__, k.__qualname__) == _UVICORN_SANSIO for k in cls.__mro__
        )
    return known


class Listener(Protocol):
    """What the bridge's uvicorn protocol calls on an attached connection (all plain calls,
    from the event loop's protocol callbacks)."""

    def on_message(self, data: str | bytes) -> None:
        """A complete client message (text as ``str``, binary as ``bytes``)."""

    def on_disconnect(self) -> None:
        """The peer closed, the socket was lost, or the server is shutting down (called once;
        the listener is detached first)."""

    def on_writable(self) -> None:
        """The transport drained below its low-water mark after a pause."""

    def on_keepalive_timeout(self) -> None:
        """A protocol ping (``bridge_ws_ping_s``) got no pong in time."""


class DirectWriter:
    """Writes pre-built frames to one uvicorn ``websockets-sansio`` connection's transport."""

    __slots__ = ("_fd", "_proto", "_transport", "_ws", "deflate_bits", "frames", "written")

    def __init__(self, proto: Any, deflate_bits: int = 0) -> None:
        self._proto = proto
        self._ws = proto.conn
        self._transport: asyncio.Transport = proto.transport
        sock = self._transport.get_extra_info("socket")
        #: The socket's descriptor, to ask the kernel what it still holds (-1: cannot).
        self._fd: int = sock.fileno() if sock is not None and sys.platform == "linux" else -1
        #: The window of this connection's permessage-deflate without server context takeover
        #: (frames are compressed for it), or 0: frames go uncompressed.
        self.deflate_bits = deflate_bits
        #: Frames written here (the rest went through the ASGI ``send``).
        self.frames = 0
        #: Bytes written here: with :meth:`buffered`, how far the peer has read.
        self.written = 0

    @classmethod
    def from_scope(cls, scope: Any) -> DirectWriter | None:
        """A writer for the connection of this ASGI scope, or None if it has none. Only the
        bridge's own protocol (one that can :meth:`attach` a listener) has one; it may be
        asked before the handshake is answered (the extensions are negotiated by then), and
        :meth:`accept` answers it."""
        ref = (scope.get("extensions") or {}).get(EXTENSION)
        proto = ref() if callable(ref) else None
        if not _is_sansio(type(proto)):
            return None
        conn = getattr(proto, "conn", None)
        if (
            conn is None
            or not callable(getattr(proto, "attach", None))
            or getattr(proto, "transport", None) is None
            or not callable(getattr(getattr(proto, "writable", None), "is_set", None))
        ):
            return None
        extensions = list(getattr(conn, "extensions", None) or ())
        if not extensions:
            return cls(proto)
        # Only permessage-deflate without server context takeover keeps messages independent
        # of each other (.uvicorn_ws negotiates it); any other extension state makes each
        # connection's frames its own.
        ext = extensions[0]
        if (
            len(extensions) == 1
            and isinstance(ext, PerMessageDeflate)
            and ext.local_no_context_takeover
        ):
            return cls(proto, ext.local_max_window_bits)
        return None

    def accept(self, subprotocol: str | None, frames: list[str | bytes]) -> bool:
        """Answer the handshake and write ``frames`` with the answer, in one write. False if
        the peer has left already."""
        data = b"".join(ws_frame(frame, self.deflate_bits) for frame in frames)
        if not self._proto.accept_now(subprotocol, data):
            return False
        self.frames += len(frames)
        self.written += len(data)
        return True

    def attach(self, listener: Listener) -> None:
        """Deliver this connection's client frames and events to ``listener`` from now on
        (frames that arrived before are delivered at once, in order)."""
        self._proto.attach(listener)

    def ready(self) -> bool:
        """True when a frame may be written now without waiting (else queue it).

        Three checks, on the hot path of every delivery: the transport is not paused for flow
        control (uvicorn's ``writable``); the WebSocket is OPEN — it moves to CLOSING whenever
        a close is sent or received; and the transport is not closing, which it is from the
        moment the peer is gone.
        """
        return (
            self._proto.writable.is_set()
            and self._ws.state is State.OPEN
            and not self._transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        self._transport.write(data)
        self.frames += 1
        self.written += len(data)

    def transport_buffered(self) -> int:
        """Bytes the transport holds (this process's memory), not yet taken by the kernel."""
        try:
            return self._transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):  # closed
            return 0

    def unread(self) -> int:
        """Bytes written here that the peer has not read yet (not acknowledged, to be exact):
        what the transport still buffers, plus what the kernel's send queue holds.

        The kernel's share matters most: on loopback a socket's send buffer starts near 4 MB
        (it scales with the 64 KB MTU), so a stalled reader's first megabytes never reach the
        transport's buffer at all. Linux tells it (``SIOCOUTQ``); elsewhere only the
        transport's buffer counts. One ioctl, about 2 µs.
        """
        try:
            size = self._transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):  # closed
            return 0
        if self._fd >= 0:
            try:
                size += int.from_bytes(fcntl.ioctl(self._fd, SIOCOUTQ, _INT), sys.byteorder)
            except OSError:
                self._fd = -1  # closed, or not a TCP socket
        return size

    def close(self, code: int, reason: str, linger_s: float) -> None:
        """Send a close frame now, behind whatever the transport still buffers; abort the
        transport if the peer has not read it all after ``linger_s`` (see
        :meth:`.uvicorn_ws.BridgeWebSocketProtocol.close_now`)."""
        self._proto.close_now(code, reason, linger_s)

    def pause_reading(self) -> None:
        """Read no more client frames until :meth:`resume_reading` (one is being handled)."""
        self._proto.hold_reading(True)

    def resume_reading(self) -> None:
        self._proto.hold_reading(False)

    def abort(self) -> None:
        """Drop the connection now (what was buffered is lost; the peer sees a reset)."""
        self._transport.abort()
