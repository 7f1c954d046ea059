"""Every close code and error code the bridge sends (``docs/protocol.md``), defined once.

Both enums are exported to JSON Schema with the frames (:mod:`.frames`) and generated into the
TypeScript client, so a code the server sends is a code the client knows.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "ErrorCode"]


class CloseCode(enum.IntEnum):
    """WebSocket close codes the bridge sends."""

    NORMAL = 1000
    TOO_BIG = 1009
    INTERNAL = 1011
    RESTART = 1012
    HEARTBEAT_TIMEOUT = 4000
    UNAUTHENTICATED = 4001
    FORBIDDEN = 4003
    SLOW_CONSUMER = 4008
    TOO_MANY_CONNECTIONS = 4009
    RATE_LIMITED = 4029


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``error`` frame; the connection stays open after any of them."""

    #: The frame is not JSON (or msgpack on a msgpack connection).
    BAD_JSON = "bad_json"
    #: Valid JSON, wrong shape; the message names the field.
    BAD_FRAME = "bad_frame"
    #: An ``op`` this protocol version does not have.
    UNKNOWN_OP = "unknown_op"
    #: A position that is not a stream id, or ``last_id`` without ``epoch`` or the reverse.
    INVALID_POSITION = "invalid_position"
    #: No such job.
    NOT_FOUND = "not_found"
    #: The job or room is not the user's.
    FORBIDDEN = "forbidden"
    #: The connection's subscription limit is reached.
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    #: Frame dropped: more than the inbound rate allows (repeated flooding closes 4029).
    RATE_LIMITED = "rate_limited"
    #: The bridge could not reach its store for this subscribe; retry with backoff.
    UNAVAILABLE = "unavailable"
    #: The bridge failed to answer this subscribe (a bug, logged on the server).
    INTERNAL = "internal"
