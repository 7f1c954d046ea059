"""The first protocol of every connection to the bridge's uvicorn: a WebSocket upgrade goes
straight to the WebSocket protocol, anything else to uvicorn's HTTP protocol.

Why not uvicorn's HTTP protocol for upgrades:

- **A reference cycle per WebSocket connection.** ``HttpToolsProtocol`` and its parser refer to
  each other (the parser calls the protocol back); uvicorn breaks that only in
  ``connection_lost``, which never reaches the HTTP protocol of an upgraded connection (the
  transport then belongs to the WebSocket protocol). So each WebSocket connection left a cycle
  holding the HTTP protocol, its parser, its flow control and the transport itself, freed only
  by a full garbage collection — which the bridge runs every 10 minutes (``gcpolicy``): under
  churn, the bridge's memory growth (``docs/benchmarks.md``, *Soak*).
- **Data after the request is lost.** uvicorn rebuilds the request from the parsed headers and
  feeds only that to the WebSocket protocol, so a frame the client sent right behind its
  request (allowed: the client may pipeline it) never arrived.
- **Work done twice.** The request was parsed by httptools (a Python callback per header), then
  serialised again and parsed once more by ``websockets``. Here it is parsed once, by
  ``websockets``, which answers a malformed handshake with 400 as before.

The check is the one uvicorn makes (``Upgrade: websocket`` with ``Connection: upgrade``); the
``websockets`` handshake then validates the rest.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

__all__ = ["BridgeHttpProtocol", "is_websocket_upgrade"]

#: Request heads longer than this are left to the HTTP protocol (which refuses them).
MAX_HEAD = 16 * 1024


def is_websocket_upgrade(head: bytes) -> bool:
    """Whether a request head (up to the blank line) asks to upgrade to WebSocket."""
    lower = head.lower()
    upgrade = _header(lower, b"upgrade")
    connection = _header(lower, b"connection")
    return (
        upgrade is not None
        and upgrade.strip() == b"websocket"
        and connection is not None
        and b"upgrade" in (token.strip() for token in connection.split(b","))
    )


def _header(lower_head: bytes, name: bytes) -> bytes | None:
    start = lower_head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = lower_head.find(b"\r\n", start)
    return lower_head[start:] if end < 0 else lower_head[start:end]


def _http_protocol_class() -> type[asyncio.Protocol]:
    if importlib.util.find_spec("httptools") is not None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


class BridgeHttpProtocol(asyncio.Protocol):
    """Reads a connection's request head, then hands the connection to the protocol that
    serves it (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.transport: asyncio.Transport | None = None
        self.head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)  # so a shutdown reaches it

    def data_received(self, data: bytes) -> None:
        head = self.head + data if self.head else data
        end = head.find(b"\r\n\r\n")
        if end < 0 and len(head) <= MAX_HEAD:
            self.head = head
            return
        self.head = b""
        config = self.config
        if end >= 0 and config.ws_protocol_class is not None and is_websocket_upgrade(head[:end]):
            cls = config.ws_protocol_class
        else:
            cls = _http_protocol_class()
        self._hand_over(cls, head)

    def _hand_over(self, cls: Any, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self.server_state.connections.discard(self)
        self.transport = None
        protocol = cls(config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        protocol.data_received(data)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.transport = None

    def shutdown(self) -> None:
        """uvicorn's shutdown: a connection that sent no complete request yet is closed."""
        if self.transport is not None:
            self.transport.close()
