"""The bridge's protocol core: what to send, decided from plain values. No I/O.

No ``await``, no Redis client, no web framework, no ``asyncio`` (an import-linter contract
checks it): the asyncio layer around it (:mod:`progress_bridge.bridge`) feeds it client frames,
live entries and the store's answers, and writes what it returns. So the whole protocol of
``docs/protocol.md`` (version :data:`PROTOCOL_VERSION`) is testable with plain values.

- :mod:`.session` — :class:`Session`, the state of one connection;
- :mod:`.answers` — what a subscribe is answered with (``subscribed``, history, position);
- :mod:`.inbound_rate` — a connection's token bucket, charged by frames and their answers;
- :mod:`.outbox` — :class:`Outbox`, the bounded coalescing queue of frames;
- :mod:`.wire` — subprotocol negotiation, :class:`FeedEntry` (an event encoded once per wire
  format) and WebSocket frame bytes: the outgoing encoding;
- :mod:`.client_ops` — the client's ops and :func:`parse_client_frame`: the incoming frames;
- :mod:`.codes` — :class:`CloseCode` and :class:`ErrorCode`; :mod:`.limits` — :class:`Limits`;
- :mod:`.frames` — the frames as pydantic models (the documented contract; TypeScript types and
  the AsyncAPI document are generated from them).
"""

from ...access import Principal
from ...exceptions import FrameError
from .client_ops import (
    Ack,
    ClientOp,
    Pong,
    SubscribeJob,
    SubscribeRoom,
    Unsubscribe,
    parse_client_frame,
)
from .codes import CloseCode, ErrorCode
from .limits import Limits
from .outbox import Outbox, TakeResult
from .session import Session
from .wire import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    PROTOCOL_VERSION,
    TOKEN_SUBPROTOCOL_PREFIX,
    FeedEntry,
    WireFormat,
    events_frame,
    negotiate,
    ws_frame,
)

__all__ = [
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "PROTOCOL_VERSION",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "Ack",
    "ClientOp",
    "CloseCode",
    "ErrorCode",
    "FeedEntry",
    "FrameError",
    "Limits",
    "Outbox",
    "Pong",
    "Principal",
    "Session",
    "SubscribeJob",
    "SubscribeRoom",
    "TakeResult",
    "Unsubscribe",
    "WireFormat",
    "events_frame",
    "negotiate",
    "parse_client_frame",
    "ws_frame",
]
