"""uvicorn's ``websockets-sansio`` protocol, negotiating permessage-deflate without server
context takeover.

Why: with context takeover (uvicorn's default) each connection's compressor carries state from
one message to the next, so every delivery must be compressed for that socket alone — measured
at 80 µs of bridge CPU per live delivery against 24 µs uncompressed. Without it (RFC 7692
§7.1.1.1; a server may require it even when the client did not ask) each message is compressed
on its own, so one event's compressed frame is the same bytes for every connection with the
same window size: the bridge compresses it once and writes it to all of them, as
gorilla/websocket's prepared messages do. Messages compress a little less well on their own;
a progress event is a few hundred bytes either way.

The parameters are uvicorn's own otherwise (12-bit windows, ``memLevel`` 5).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request
from websockets.server import ServerProtocol

from .core.wire import COMPRESS_SETTINGS
from .direct import EXTENSION

__all__ = ["WINDOW_BITS", "BridgeWebSocketProtocol"]

#: The server's LZ77 window (``server_max_window_bits``), as uvicorn negotiates it.
WINDOW_BITS = 12


class BridgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """``websockets-sansio`` with ``server_no_context_takeover`` when deflate is negotiated, and
    itself in the scope's extensions (:data:`~progress_bridge.bridge.direct.EXTENSION`), so
    the bridge can write pre-built frames to its transport."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        if config.ws_per_message_deflate:
            self.conn = ServerProtocol(
                extensions=[
                    ServerPerMessageDeflateFactory(
                        server_no_context_takeover=True,
                        server_max_window_bits=WINDOW_BITS,
                        client_max_window_bits=WINDOW_BITS,
                        compress_settings=COMPRESS_SETTINGS,
                    )
                ],
                max_size=config.ws_max_size,
                logger=logging.getLogger("uvicorn.error"),
            )

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            # A weak reference: the protocol holds the scope, so a strong one would be a cycle
            # that only a full garbage collection frees after the connection closes.
            scope["extensions"][EXTENSION] = weakref.ref(self)
