"""The bridge's uvicorn WebSocket protocol: ``websockets-sansio``, lighter per connection, with
shareable deflate frames, and able to serve a connection by plain calls once its handshake is
done.

What it changes, and why:

- **permessage-deflate without server context takeover.** With context takeover (uvicorn's
  default) each connection's compressor carries state from one message to the next, so every
  delivery must be compressed for that socket alone — 80 µs of bridge CPU per live delivery
  against 24 µs uncompressed. Without it (RFC 7692 §7.1.1.1; a server may require it even when
  the client did not ask) each message is compressed on its own, so one event's compressed
  frame is the same bytes for every connection with the same window size (uvicorn's 12-bit
  windows and ``memLevel`` 5 otherwise).
- **Itself in the scope** (:data:`~progress_bridge.bridge.direct.EXTENSION`, a weak reference:
  the protocol holds the scope, so a strong one would be a cycle), so the bridge can write
  pre-built frames to its transport.
- **A listener** (:meth:`BridgeWebSocketProtocol.attach`): the bridge's endpoint attaches the
  connection after the handshake and returns from the ASGI app. Client messages, flow control
  and the disconnect then reach the connection by calls; nothing is queued, no coroutine waits
  per connection (the ASGI app's frames — a dozen middleware and routing layers in FastAPI —
  would otherwise live as long as the connection: ~6 KB each, ``docs/benchmarks.md``).
- **No cycle left behind**: ``websockets``' parser generator (which refers back to its
  protocol object) is closed when the connection is lost; the listener is detached.
- **Lighter state.** uvicorn's ``asyncio.Queue`` and ``asyncio.Event`` (five deques, ~4 KB per
  connection) become :class:`_Inbox` and :class:`_Flag`; one ``ServerProtocol`` is built, not two;
  the handshake request, response and headers are released once the connection is attached.
- **Closing without waiting** (:meth:`BridgeWebSocketProtocol.close_now`): the close frame goes
  behind what the transport still buffers, not after it drains, and a transport a stalled
  peer never drains is aborted after a linger — uvicorn would wait for it forever.
- **Keepalive through the bridge**: when protocol pings are on (``bridge_ws_ping_s``) and one
  goes unanswered, an attached connection decides how it closes (4008 when its frames are
  stuck unread, else 1011), instead of uvicorn's 1011 and immediate close.

``__init__`` repeats uvicorn's (0.55) with those replacements; ``tests/unit/test_uvicorn_ws.py``
fails if a uvicorn upgrade sets attributes this one does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import weakref
from typing import Any

from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_path_with_query_string,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request
from websockets.server import ServerProtocol

from .core.wire import COMPRESS_SETTINGS
from .direct import EXTENSION, Listener

__all__ = ["WINDOW_BITS", "BridgeWebSocketProtocol"]

#: The server's LZ77 window (``server_max_window_bits``), as uvicorn negotiates it.
WINDOW_BITS = 12

_LOGGER = logging.getLogger("uvicorn.error")
#: SO_LINGER on, 0 s: closing the socket resets the connection and drops what it still holds.
_RESET = struct.pack("ii", 1, 0)


class _Inbox:
    """uvicorn's receive queue, lighter, and handing events to a listener once one is attached.

    Until then it queues ASGI events (a list made on first use, one waiter); afterwards
    nothing is queued: the only event that still comes this way is the disconnect, which goes
    to the listener (detached first, so it gets it once).
    """

    __slots__ = ("_items", "_waiter", "listener")

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.listener: Listener | None = None

    def put_nowait(self, message: dict[str, Any]) -> None:
        listener = self.listener
        if listener is not None:
            if message["type"] == "websocket.disconnect":
                self.listener = None
                listener.on_disconnect()
            return
        if self._items is None:
            self._items = []
        self._items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> dict[str, Any]:
        while not self._items:
            # Awaited as an attribute, not a local: a cancelled wait leaves no frame that
            # holds the future whose exception holds the frame (a reference cycle).
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def drain(self) -> list[dict[str, Any]]:
        items, self._items = self._items or [], None
        return items


class _Flag:
    """``asyncio.Event`` for uvicorn's ``writable``, without a deque per connection."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            waiters, self._waiters = self._waiters, None
            for fut in waiters or ():
                if not fut.done():
                    fut.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            if self._waiters is None:
                self._waiters = []
            # Awaited through the list, not a local (see _Inbox.get).
            self._waiters.append(asyncio.get_running_loop().create_future())
            await self._waiters[-1]
        return True


class BridgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol for the bridge (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # uvicorn's __init__, with the replacements named in the module docstring.
        if not config.loaded:
            config.load()  # pragma: no cover
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_running_loop()
        self.logger = _LOGGER
        self.root_path = config.root_path
        self.asgi_version = config.asgi_version
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server = None
        self.client = None
        self.scheme = None  # type: ignore[assignment]
        self.queue = _Inbox()  # type: ignore[assignment]
        self.handshake_initiated = False
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.close_timeout = 10.0
        self.initial_response = None
        extensions = []
        if config.ws_per_message_deflate:
            extensions = [
                ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True,
                    server_max_window_bits=WINDOW_BITS,
                    client_max_window_bits=WINDOW_BITS,
                    compress_settings=COMPRESS_SETTINGS,
                )
            ]
        self.conn = ServerProtocol(
            extensions=extensions, max_size=config.ws_max_size, logger=_LOGGER
        )
        self.read_paused = False
        self.writable = _Flag()  # type: ignore[assignment]
        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self.ping_timer = None
        self.pong_timer = None
        self.pending_ping_payload = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0
        self.frames = []
        self.curr_msg_data_type = "bytes"
        #: Aborts a closed transport the peer never drained (see close_now).
        self.linger_timer: asyncio.TimerHandle | None = None

    # -- the handshake -------------------------------------------------------------------------

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        self.request = None  # type: ignore[assignment]  # read once, above
        scope = getattr(self, "scope", None)
        if scope is not None:
            # ASGI header names are lowercase. uvicorn copies them as the client wrote them,
            # relying on its HTTP protocol, which lowercased them when it rebuilt the request;
            # the request now comes as sent (.uvicorn_http). An "Origin" missed by a check for
            # "origin" would let a cross-site handshake through.
            scope["headers"] = [(name.lower(), value) for name, value in scope["headers"]]
            scope["extensions"][EXTENSION] = weakref.ref(self)

    async def run_asgi(self) -> None:
        # uvicorn's, except that an attached connection stays open when the app returns.
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self.attached:
            self.transport.close()

    # -- a connection served by calls -----------------------------------------------------------

    #: Set once a listener was attached (it stays set after the listener is detached).
    attached = False

    def attach(self, listener: Listener) -> None:
        """Serve the connection through ``listener`` from now on (after the accept)."""
        self.attached = True
        inbox: _Inbox = self.queue  # type: ignore[assignment]
        pending = inbox.drain()
        # What only the handshake needed; the app is done with the scope's headers too.
        self.response = None  # type: ignore[assignment]
        self.scope["headers"] = []
        if self.disconnected:
            listener.on_disconnect()
            return
        inbox.listener = listener
        for message in pending:
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                listener.on_message(text if text is not None else message.get("bytes") or b"")
            elif kind == "websocket.disconnect":
                inbox.listener = None
                listener.on_disconnect()
                return
        self.hold_reading(False)

    def accept_now(self, subprotocol: str | None, then: bytes) -> bool:
        """uvicorn's ``websocket.accept``, done here: the 101 response and ``then`` (the first
        frames) in one write, one syscall fewer per connect. False if the peer already left.

        The ASGI ``send`` would do the same in a coroutine behind the middleware's wrappers,
        then the first frame would take a write of its own.
        """
        if self.handshake_complete or self.disconnected or self.transport.is_closing():
            return False
        if self.logger.isEnabledFor(logging.INFO):  # uvicorn's access line
            self.logger.info(
                '%s - "WebSocket %s" [accepted]',
                get_client_addr(self.scope),
                get_path_with_query_string(self.scope),
            )
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self.default_headers
        ]
        if subprotocol:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        del self.response.headers["Date"]
        self.response.headers.update(headers)
        self.handshake_complete = True
        self.conn.send_response(self.response)
        self.transport.write(b"".join(self.conn.data_to_send()) + then)
        self.start_keepalive()
        return True

    @property
    def listener(self) -> Listener | None:
        listener: Listener | None = self.queue.listener  # type: ignore[attr-defined]
        return listener

    def send_receive_event_to_app(self) -> None:
        listener = self.listener
        if listener is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # as uvicorn: past our close, only the peer's close answer matters
        if self.curr_msg_data_type == "text":
            try:
                text = bytes(data).decode()
            except UnicodeDecodeError:
                self.logger.info("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            listener.on_message(text)
        else:
            listener.on_message(bytes(data))

    def hold_reading(self, hold: bool) -> None:
        """Pause (or resume) reading client frames while one is being handled."""
        if hold != self.read_paused and not self.transport.is_closing():
            self.read_paused = hold
            if hold:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        listener = self.listener
        if listener is not None:
            listener.on_writable()

    def keepalive_timeout(self) -> None:
        listener = self.listener
        if listener is None:
            super().keepalive_timeout()
            return
        self.pong_timer = None
        self.pending_ping_payload = None
        if not self.close_sent and not self.transport.is_closing():
            listener.on_keepalive_timeout()

    def close_now(self, code: int, reason: str, linger_s: float) -> None:
        """Send a close frame now, behind whatever the transport still buffers.

        Not through the ASGI ``send``, which first waits for a paused transport to drain (for
        a stalled reader: forever). The state afterwards is what uvicorn's own close leaves:
        close sent, reads resumed (to see the peer's answer), the transport closed after
        ``close_timeout`` if the peer does not answer. A transport closes only once drained,
        so one whose peer never reads again is aborted after ``linger_s``.
        """
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.hold_reading(False)
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        self.linger_timer = self.loop.call_later(linger_s, self._linger_over)

    def _linger_over(self) -> None:
        """Drop the connection with a reset. A plain close would leave the kernel holding the
        unread bytes (and the close frame behind them) for a peer that does not read."""
        self.linger_timer = None
        if self.disconnected:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # the listener gets the disconnect, and is detached
        self.queue.listener = None  # type: ignore[attr-defined]
        if self.linger_timer is not None:
            self.linger_timer.cancel()
            self.linger_timer = None
        # websockets' parser is a generator of its protocol object, suspended for good now; its
        # frame holds the protocol, which holds it: a cycle, unless the generator is closed.
        self.conn.parser.close()
