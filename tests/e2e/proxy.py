"""A loopback HTTP forwarder in front of the web app that can refuse WebSocket upgrades, as some
corporate proxies do: while :attr:`UpgradeRefusingProxy.refuse_upgrades` is set, a connection
whose request asks for ``Upgrade: websocket`` is answered ``403 Forbidden`` and closed; every other
connection is forwarded byte for byte, both ways (pages, the REST API, ``GET /sse`` streams).

Only a connection's first request is looked at: browsers open a connection of its own for each
WebSocket, never one kept alive from earlier requests.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
import socketserver
import threading
from types import TracebackType

__all__ = ["UpgradeRefusingProxy"]

_UPGRADE = re.compile(rb"^upgrade:[ \t]*websocket[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_HEAD_LIMIT = 65_536
_REFUSAL = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: UpgradeRefusingProxy


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.proxy.forward(self.request)


class UpgradeRefusingProxy:
    """Listens on a free loopback port and forwards to ``target_port`` on loopback."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        #: While true, WebSocket handshakes get HTTP 403.
        self.refuse_upgrades = False
        #: Handshakes refused so far, and WebSocket handshakes let through.
        self.upgrades_refused = 0
        self.upgrades_passed = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UpgradeRefusingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes and ends every pump below
            self._open.clear()
        self._thread.join()

    def forward(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        if _UPGRADE.search(head.split(b"\r\n\r\n", 1)[0]):
            if self.refuse_upgrades:
                self.upgrades_refused += 1
                client.sendall(_REFUSAL)
                return
            self.upgrades_passed += 1
        with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            with self._lock:
                self._open.update((client, upstream))
            try:
                upstream.sendall(head)
                self._pump(client, upstream)
            finally:
                with self._lock:
                    self._open.difference_update((client, upstream))

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        """Copy bytes both ways until either side closes."""
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65_536)
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return
