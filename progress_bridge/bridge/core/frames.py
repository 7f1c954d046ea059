"""Every frame of the wire protocol as a pydantic model: the documented contract, in code.

The bridge builds its frames by hand on the hot path (pre-encoded events, concatenated
batches) and parses client frames with :func:`~.client_ops.parse_client_frame`, which maps each
mistake to an error code. These models are the one definition both must agree with: tests
validate every frame a session emits against :data:`ServerFrame` and feed frames built from
:data:`ClientFrame` to the parser; ``scripts/gen_types`` generates the TypeScript frame types,
codes and constants from :func:`protocol_schema` and :func:`protocol_constants`, so the client
and its test server cannot drift from the server. Pure; no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ...events.jsonschema import json_schema as events_schema
from ...events.schema import JOB_ID_PATTERN, ProgressEvent
from ...events.snapshot import JobSnapshot
from .client_ops import MAX_ROOM_POSITIONS
from .codes import CloseCode, ErrorCode
from .wire import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    PROTOCOL_VERSION,
    TOKEN_SUBPROTOCOL_PREFIX,
)

__all__ = [
    "AckFrame",
    "BatchFrame",
    "ClientFrame",
    "ErrorFrame",
    "EventFrame",
    "HelloFrame",
    "JobPresence",
    "PingFrame",
    "PongFrame",
    "PresenceFrame",
    "RoomReplay",
    "ServerFrame",
    "SseCloseFrame",
    "SseFrame",
    "StreamPosition",
    "SubscribeJobFrame",
    "SubscribeRoomFrame",
    "SubscribedFrame",
    "UnsubscribeJobFrame",
    "UnsubscribeRoomFrame",
    "UnsubscribedFrame",
    "client_frame_adapter",
    "protocol_constants",
    "protocol_schema",
    "server_frame_adapter",
    "sse_frame_adapter",
]

JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]
Ref = Annotated[
    str | int | None,
    Field(description="Copied from the client frame into its answer (at most 64 characters)."),
]
Room = Annotated[str, Field(pattern=r"^(user|document):.{1,200}$")]
StreamIdText = Annotated[str, Field(pattern=r"^\d+(-\d+)?$", description="'<ms>-<seq>'")]
#: Why a subscribe's position was (not) honoured, as the wire carries it.
WireReplayReason = Literal["ok", "epoch_changed", "trimmed", "ahead"]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamPosition(_Frame):
    """A position in a job's stream: the epoch and the last id the client applied."""

    epoch: Annotated[str, Field(min_length=1, max_length=64)]
    last_id: StreamIdText


# -- client → server -----------------------------------------------------------------------------


class SubscribeJobFrame(_Frame):
    """Watch one job; with a position, resume after it (``docs/protocol.md``, *Replay*)."""

    op: Literal["subscribe"]
    job_id: JobId
    epoch: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    last_id: StreamIdText | None = None
    #: Also send who watches the job: in the answer, then ``presence`` frames when it changes.
    presence: bool = False
    ref: Ref = None


class SubscribeRoomFrame(_Frame):
    """Watch every job of a user (``user:<name>``) or a document (``document:<id>``)."""

    op: Literal["subscribe"]
    room: Room
    positions: Annotated[dict[str, StreamPosition] | None, Field(max_length=MAX_ROOM_POSITIONS)] = (
        None
    )
    ref: Ref = None


class UnsubscribeJobFrame(_Frame):
    """Stop watching a job."""

    op: Literal["unsubscribe"]
    job_id: JobId
    ref: Ref = None


class UnsubscribeRoomFrame(_Frame):
    """Stop watching a room."""

    op: Literal["unsubscribe"]
    room: Room
    ref: Ref = None


class AckFrame(_Frame):
    """The client has rendered the job up to ``id`` (metrics and the admin view; no answer)."""

    op: Literal["ack"]
    job_id: JobId
    id: StreamIdText


class PongFrame(_Frame):
    """Answer to ``ping`` (any frame proves the client alive)."""

    op: Literal["pong"]


ClientFrame = (
    SubscribeJobFrame
    | SubscribeRoomFrame
    | UnsubscribeJobFrame
    | UnsubscribeRoomFrame
    | AckFrame
    | PongFrame
)


# -- server → client -----------------------------------------------------------------------------


class HelloFrame(_Frame):
    """The first frame of every connection."""

    op: Literal["hello"]
    protocol: int
    user: str
    heartbeat_s: float
    max_frame_bytes: int


class RoomReplay(_Frame):
    """How one job of a room subscribe's ``positions`` was resumed."""

    job_id: str
    recovered: bool
    reason: WireReplayReason
    epoch: str | None
    snapshot: JobSnapshot | None


class JobPresence(_Frame):
    """Who watches a job across every bridge process: connections subscribed to it by id, and
    (for admins only) their users' names."""

    watching: Annotated[int, Field(ge=0)]
    users: list[str] | None = None


class SubscribedFrame(_Frame):
    """The answer to a subscribe: for a job (``job_id``) or a room (``room``, ``jobs``,
    ``replays``). ``recovered: false`` always comes with a ``snapshot`` (per job for rooms)."""

    op: Literal["subscribed"]
    ref: Ref
    job_id: str | None = None
    room: str | None = None
    recovered: bool
    reason: WireReplayReason
    epoch: str | None
    snapshot: JobSnapshot | None
    jobs: list[JobSnapshot] | None = None
    replays: list[RoomReplay] | None = None
    presence: JobPresence | None = None


class EventFrame(_Frame):
    """One event, with its ``id`` and ``epoch``."""

    op: Literal["event"]
    event: ProgressEvent


class BatchFrame(_Frame):
    """Several events, in order, in one frame (sent to connections that lag)."""

    op: Literal["batch"]
    events: list[ProgressEvent]


class UnsubscribedFrame(_Frame):
    """The answer to an unsubscribe."""

    op: Literal["unsubscribed"]
    ref: Ref
    job_id: str | None = None
    room: str | None = None


class ErrorFrame(_Frame):
    """A refused frame; the connection stays open. Match on ``code``; ``message`` is for
    people."""

    op: Literal["error"]
    ref: Ref
    code: ErrorCode
    message: str


class PresenceFrame(_Frame):
    """Who watches a job the client subscribed to, when it changes (at most one per
    ``presence_interval_s`` per job): ``watching`` connections, ``users`` for admins."""

    op: Literal["presence"]
    job_id: str
    watching: Annotated[int, Field(ge=0)]
    users: list[str] | None = None


class PingFrame(_Frame):
    """Heartbeat, every ``heartbeat_s``; answer with ``pong``."""

    op: Literal["ping"]


ServerFrame = Annotated[
    HelloFrame
    | SubscribedFrame
    | EventFrame
    | BatchFrame
    | UnsubscribedFrame
    | ErrorFrame
    | PresenceFrame
    | PingFrame,
    Field(discriminator="op"),
]


# -- GET /sse (server → client only) -------------------------------------------------------------


class SseCloseFrame(_Frame):
    """``GET /sse`` only: the last message of a stream the bridge ends (slow consumer, token
    expired, restart), with the WebSocket close code that says what the client should do."""

    op: Literal["close"]
    code: Annotated[
        int, Field(description="A close code of the WebSocket table (ServerCloseCode).")
    ]
    reason: str


#: What one SSE message's ``data`` holds: the WebSocket's frames but ``hello`` and ``ping`` (the
#: route is the protocol, keep-alives are comments), plus the stream's ``close``.
SseFrame = Annotated[
    SubscribedFrame | EventFrame | BatchFrame | ErrorFrame | PresenceFrame | SseCloseFrame,
    Field(discriminator="op"),
]

server_frame_adapter: TypeAdapter[Any] = TypeAdapter(ServerFrame)
client_frame_adapter: TypeAdapter[Any] = TypeAdapter(ClientFrame)
sse_frame_adapter: TypeAdapter[Any] = TypeAdapter(SseFrame)


def protocol_schema() -> dict[str, Any]:
    """JSON Schema of the events, the snapshot, every frame and the codes, with one ``$defs``.

    The root is an index object (not a frame) whose properties name the unions, so a generator
    emits every type.
    """
    events = events_schema()
    defs: dict[str, Any] = dict(events.pop("$defs", {}))
    events.pop("title", None)
    defs["ProgressEvent"] = {"title": "ProgressEvent", **events}
    event_refs = _refs_of(events)
    adapters = (
        ("ServerFrame", server_frame_adapter),
        ("ClientFrame", client_frame_adapter),
        ("SseFrame", sse_frame_adapter),
    )
    for name, adapter in adapters:
        schema = adapter.json_schema(ref_template="#/$defs/{model}", mode="serialization")
        for def_name, definition in schema.pop("$defs", {}).items():
            defs.setdefault(def_name, _named_events(definition, event_refs))
        defs[name] = {"title": name, **schema}
    defs["ServerCloseCode"] = {
        "title": "ServerCloseCode",
        "description": "WebSocket close codes the bridge sends.",
        "type": "integer",
        "enum": [int(code) for code in CloseCode],
    }
    return {
        "title": "ProgressBridgeTypes",
        "description": "Index of the generated types (not a wire frame).",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "event",
            "snapshot",
            "server_frame",
            "client_frame",
            "sse_frame",
            "close_code",
        ],
        "properties": {
            "event": {"$ref": "#/$defs/ProgressEvent"},
            "snapshot": {"$ref": "#/$defs/JobSnapshot"},
            "server_frame": {"$ref": "#/$defs/ServerFrame"},
            "client_frame": {"$ref": "#/$defs/ClientFrame"},
            "sse_frame": {"$ref": "#/$defs/SseFrame"},
            "close_code": {"$ref": "#/$defs/ServerCloseCode"},
        },
        "$defs": defs,
    }


def _refs_of(union: dict[str, Any]) -> frozenset[str]:
    return frozenset(option["$ref"] for option in union.get("oneOf", ()))


def _named_events(node: Any, event_refs: frozenset[str]) -> Any:
    """``node`` with each inline copy of the event union replaced by a reference to it."""
    if isinstance(node, list):
        return [_named_events(item, event_refs) for item in node]
    if not isinstance(node, dict):
        return node
    if "oneOf" in node and _refs_of(node) == event_refs:
        return {"$ref": "#/$defs/ProgressEvent"}
    return {key: _named_events(value, event_refs) for key, value in node.items()}


def protocol_constants() -> dict[str, Any]:
    """The protocol's values a client needs at run time (versions, names, codes)."""
    return {
        "PROTOCOL_VERSION": PROTOCOL_VERSION,
        "JSON_SUBPROTOCOL": JSON_SUBPROTOCOL,
        "MSGPACK_SUBPROTOCOL": MSGPACK_SUBPROTOCOL,
        "TOKEN_SUBPROTOCOL_PREFIX": TOKEN_SUBPROTOCOL_PREFIX,
        "MAX_ROOM_POSITIONS": MAX_ROOM_POSITIONS,
        "JOB_ID_PATTERN": JOB_ID_PATTERN,
        "ErrorCode": {code.name: code.value for code in ErrorCode},
        "CloseCode": {code.name: int(code) for code in CloseCode},
    }
