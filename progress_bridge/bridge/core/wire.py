"""Wire encoding of the bridge protocol (``docs/protocol.md``): subprotocol negotiation, client
frame parsing, :class:`FeedEntry` (an event encoded at most once per wire format) and
:func:`ws_frame` (a server frame's WebSocket bytes, built once and shared by every socket).

Pure functions and values, no I/O.
A batch frame is built by concatenating already-encoded events (JSON text, or msgpack maps
behind a hand-written array header), so batching costs no re-encoding.
"""

from __future__ import annotations

import enum
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack

from ...events.ids import parse_stream_id
from ...events.policy import CoalesceKey, coalesce_key
from ...events.records import StoredEntry, with_position
from ...events.schema import JOB_ID_PATTERN
from ...exceptions import FrameError
from .codes import ErrorCode

__all__ = [
    "COMPRESS_SETTINGS",
    "JSON_SUBPROTOCOL",
    "MAX_ROOM_POSITIONS",
    "MSGPACK_SUBPROTOCOL",
    "PROTOCOL_VERSION",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "Ack",
    "ClientOp",
    "FeedEntry",
    "Pong",
    "SubscribeJob",
    "SubscribeRoom",
    "Unsubscribe",
    "WireFormat",
    "events_frame",
    "negotiate",
    "parse_client_frame",
    "ws_frame",
]

PROTOCOL_VERSION = 1
JSON_SUBPROTOCOL = "progress.v1.json"
MSGPACK_SUBPROTOCOL = "progress.v1.msgpack"
TOKEN_SUBPROTOCOL_PREFIX = "token."

#: zlib settings of compressed frames (uvicorn's, and ``uvicorn_ws``'s).
COMPRESS_SETTINGS = {"memLevel": 5}

_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
_MAX_REF = 64
_MAX_EPOCH = 64
_MAX_ROOM_NAME = 200
#: Job positions one room subscribe may carry (each costs a replay read).
MAX_ROOM_POSITIONS = 100


class WireFormat(enum.StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


def negotiate(offered: Iterable[str]) -> tuple[WireFormat, str | None, str | None]:
    """Pick the wire format and find the token among the offered subprotocols.

    Returns:
        ``(format, subprotocol to echo or None, token or None)``. The ``token.<JWT>``
        subprotocol is never echoed; when the client offered no format, JSON is used and
        nothing is echoed.
    """
    fmt, echo, token = WireFormat.JSON, None, None
    for proto in offered:
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            token = token or proto[len(TOKEN_SUBPROTOCOL_PREFIX) :]
        elif proto == MSGPACK_SUBPROTOCOL and echo is None:
            fmt, echo = WireFormat.MSGPACK, proto
        elif proto == JSON_SUBPROTOCOL and echo is None:
            fmt, echo = WireFormat.JSON, proto
    return fmt, echo, token


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


# -- Live entries ------------------------------------------------------------------------------


def _mp_map2_prefix(op: str, key: str) -> bytes:
    """msgpack of ``{"op": op, key: `` — the event(s) follow, already packed."""
    return b"\x82" + msgpack.packb("op") + msgpack.packb(op) + msgpack.packb(key)  # type: ignore[no-any-return]


_MP_EVENT_PREFIX = _mp_map2_prefix("event", "event")
_MP_BATCH_PREFIX = _mp_map2_prefix("batch", "events")


def _mp_array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class FeedEntry:
    """One event on its way to subscribers; parsed once, encoded at most once per wire format.

    Built by the feed reader (one per feed entry, shared by every session it is routed to) or
    from replayed history. ``key`` is the parsed id, for cheap ordering checks.
    """

    __slots__ = (
        "_data",
        "_json_event",
        "_json_frame",
        "_json_wire",
        "_mp_event",
        "_mp_frame",
        "_wires",
        "coalesce_key",
        "document_id",
        "epoch",
        "export_id",
        "id",
        "job_id",
        "key",
        "owner",
        "payload",
        "size",
        "ts",
        "type",
    )

    def __init__(self, job_id: str, event_id: str, epoch: str, payload: str) -> None:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ValueError(f"feed payload of {job_id} {event_id} is not a JSON object")
        self.job_id = job_id
        self.id = event_id
        self.epoch = epoch
        self.payload = payload
        self.key = parse_stream_id(event_id)
        self._data: dict[str, Any] | None = data
        self.type: str = str(data.get("type", ""))
        ts = data.get("ts")
        self.ts: float = float(ts) if isinstance(ts, int | float) else 0.0
        self.owner: str | None = data.get("owner")
        self.document_id: str | None = data.get("document_id")
        self.export_id: str | None = data.get("export_id")
        self.size = len(payload) + len(event_id) + len(epoch) + 48
        #: Entries with the same key replace each other in a lagging outbox; None: never.
        self.coalesce_key: CoalesceKey | None = coalesce_key(job_id, self.type, self.export_id)
        self._json_event: str | None = None
        self._json_frame: str | None = None
        self._mp_event: bytes | None = None
        self._mp_frame: bytes | None = None
        self._json_wire: bytes | None = None
        self._wires: dict[tuple[WireFormat, int], bytes] | None = None

    @classmethod
    def from_stored(cls, entry: StoredEntry) -> FeedEntry:
        return cls(entry.job_id, entry.id, entry.epoch, entry.payload)

    def json_event(self) -> str:
        if self._json_event is None:
            self._json_event = with_position(self.payload, self.id, self.epoch)
        return self._json_event

    def json_frame(self) -> str:
        if self._json_frame is None:
            self._json_frame = '{"op":"event","event":' + self.json_event() + "}"
        return self._json_frame

    def mp_event(self) -> bytes:
        if self._mp_event is None:
            data = self._data if self._data is not None else json.loads(self.payload)
            packed: bytes = msgpack.packb({"id": self.id, "epoch": self.epoch, **data})
            self._mp_event = packed
            self._data = None  # the packed form is all msgpack sessions need from now on
        return self._mp_event

    def mp_frame(self) -> bytes:
        if self._mp_frame is None:
            self._mp_frame = _MP_EVENT_PREFIX + self.mp_event()
        return self._mp_frame

    def wire_frame(self, fmt: WireFormat, deflate_bits: int = 0) -> bytes:
        """This event's ``event`` frame as WebSocket frame bytes, built once per format and
        compression (see :func:`ws_frame`)."""
        if fmt is WireFormat.JSON and not deflate_bits:  # the common case: one slot, no key
            if self._json_wire is None:
                self._json_wire = ws_frame(self.json_frame())
            return self._json_wire
        key = (fmt, deflate_bits)
        wires = self._wires
        if wires is None:
            wires = self._wires = {}
        wire = wires.get(key)
        if wire is None:
            frame = self.mp_frame() if fmt is WireFormat.MSGPACK else self.json_frame()
            wire = wires[key] = ws_frame(frame, deflate_bits)
        return wire

    def __repr__(self) -> str:
        return f"FeedEntry({self.job_id!r}, {self.id!r}, {self.type!r})"


def events_frame(run: list[FeedEntry], fmt: WireFormat) -> str | bytes:
    """One ``event`` frame, or a ``batch`` frame of several, from pre-encoded events."""
    if fmt is WireFormat.MSGPACK:
        if len(run) == 1:
            return run[0].mp_frame()
        return _MP_BATCH_PREFIX + _mp_array_header(len(run)) + b"".join(e.mp_event() for e in run)
    if len(run) == 1:
        return run[0].json_frame()
    return '{"op":"batch","events":[' + ",".join(e.json_event() for e in run) + "]}"


# -- Client frames -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeJob:
    job_id: str
    epoch: str | None = None
    last_id: str | None = None
    ref: str | int | None = None
    #: Asked to be told who watches the job (``presence`` frames).
    presence: bool = False


@dataclass(frozen=True, slots=True)
class SubscribeRoom:
    room: str
    kind: Literal["user", "document"]
    name: str
    positions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    ref: str | int | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    job_id: str | None = None
    room: str | None = None
    ref: str | int | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    job_id: str
    id: str


@dataclass(frozen=True, slots=True)
class Pong:
    pass


ClientOp = SubscribeJob | SubscribeRoom | Unsubscribe | Ack | Pong


def _decode(data: str | bytes, fmt: WireFormat) -> dict[str, Any]:
    try:
        if isinstance(data, bytes):
            if fmt is not WireFormat.MSGPACK:
                raise FrameError(
                    "binary frames are not JSON; send text frames", code=ErrorCode.BAD_JSON
                )
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
        else:
            if fmt is WireFormat.MSGPACK:
                raise FrameError(
                    "text frames are not msgpack; this connection negotiated "
                    f"{MSGPACK_SUBPROTOCOL}: send binary frames",
                    code=ErrorCode.BAD_JSON,
                )
            obj = json.loads(data)
    except FrameError:
        raise
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        what = "msgpack" if isinstance(data, bytes) else "JSON"
        raise FrameError(f"frame is not valid {what}: {exc}", code=ErrorCode.BAD_JSON) from None
    except Exception as exc:  # msgpack raises assorted errors on garbage
        raise FrameError(f"frame is not valid msgpack: {exc}", code=ErrorCode.BAD_JSON) from None
    if not isinstance(obj, dict):
        raise FrameError("a frame must be an object with an 'op'", code=ErrorCode.BAD_FRAME)
    return obj


def _ref(obj: Mapping[str, Any]) -> str | int | None:
    ref = obj.get("ref")
    if ref is None or (isinstance(ref, int) and not isinstance(ref, bool)):
        return ref
    if isinstance(ref, str) and len(ref) <= _MAX_REF:
        return ref
    raise FrameError(
        f"'ref' must be a string of at most {_MAX_REF} characters", code=ErrorCode.BAD_FRAME
    )


def _job_id(value: Any, ref: str | int | None, name: str = "job_id") -> str:
    if not isinstance(value, str) or not _JOB_ID_RE.match(value):
        raise FrameError(f"'{name}' must be a job id", code=ErrorCode.BAD_FRAME, ref=ref)
    return value


def _position(
    epoch: Any, last_id: Any, ref: str | int | None, where: str = ""
) -> tuple[str, str] | None:
    """``(epoch, last_id)`` or None. A field of the wrong type is ``bad_frame``; well-typed
    values that do not make a position (one without the other, not a stream id) are
    ``invalid_position``."""
    if epoch is None and last_id is None:
        return None
    if epoch is not None and (not isinstance(epoch, str) or len(epoch) > _MAX_EPOCH):
        raise FrameError(
            f"'epoch'{where} must be a string of at most {_MAX_EPOCH} characters",
            code=ErrorCode.BAD_FRAME,
            ref=ref,
        )
    if last_id is not None and not isinstance(last_id, str):
        raise FrameError(
            f"'last_id'{where} must be a stream id string", code=ErrorCode.BAD_FRAME, ref=ref
        )
    if not epoch:
        raise FrameError(
            f"'last_id'{where} needs its 'epoch'", code=ErrorCode.INVALID_POSITION, ref=ref
        )
    if last_id is None:
        raise FrameError(
            f"'epoch'{where} needs a 'last_id'", code=ErrorCode.INVALID_POSITION, ref=ref
        )
    try:
        parse_stream_id(last_id)
    except ValueError as exc:
        raise FrameError(f"{exc}{where}", code=ErrorCode.INVALID_POSITION, ref=ref) from None
    return epoch, last_id


def _room(value: Any, ref: str | int | None) -> tuple[Literal["user", "document"], str]:
    if isinstance(value, str):
        kind, sep, name = value.partition(":")
        if sep and name and len(name) <= _MAX_ROOM_NAME:
            if kind == "user":
                return "user", name
            if kind == "document":
                return "document", name
    raise FrameError(
        "'room' must be 'user:<name>' or 'document:<id>'", code=ErrorCode.BAD_FRAME, ref=ref
    )


def _target(obj: Mapping[str, Any], ref: str | int | None, op: str) -> None:
    if "room" in obj and "job_id" in obj:
        raise FrameError(
            f"a {op} names a 'job_id' or a 'room', not both", code=ErrorCode.BAD_FRAME, ref=ref
        )


def parse_client_frame(data: str | bytes, fmt: WireFormat = WireFormat.JSON) -> ClientOp:
    """Parse one client frame.

    Raises:
        FrameError: with the protocol's error ``code`` (``bad_json``, ``bad_frame``,
            ``unknown_op``, ``invalid_position``) and the frame's ``ref`` when it had one. A
            malformed ``ack`` raises with ``reply=False``: acks get no answer, good or bad.
    """
    obj = _decode(data, fmt)
    op = obj.get("op")
    if op == "ack":
        return _ack(obj)
    ref = _ref(obj)
    if op == "subscribe":
        _target(obj, ref, "subscribe")
        if "room" in obj:
            kind, name = _room(obj["room"], ref)
            raw_positions = obj.get("positions") or {}
            if not isinstance(raw_positions, dict):
                raise FrameError("'positions' must be an object", code=ErrorCode.BAD_FRAME, ref=ref)
            if len(raw_positions) > MAX_ROOM_POSITIONS:
                raise FrameError(
                    f"at most {MAX_ROOM_POSITIONS} 'positions' per room subscribe",
                    code=ErrorCode.BAD_FRAME,
                    ref=ref,
                )
            positions: dict[str, tuple[str, str]] = {}
            for job, pos in raw_positions.items():
                job = _job_id(job, ref, "positions")
                if not isinstance(pos, dict):
                    raise FrameError(
                        "each position must be {epoch, last_id}", code=ErrorCode.BAD_FRAME, ref=ref
                    )
                parsed = _position(pos.get("epoch"), pos.get("last_id"), ref, f" (job {job})")
                if parsed is not None:
                    positions[job] = parsed
            return SubscribeRoom(obj["room"], kind, name, positions, ref)
        job_id = _job_id(obj.get("job_id"), ref)
        pos = _position(obj.get("epoch"), obj.get("last_id"), ref)
        presence = obj.get("presence", False)
        if not isinstance(presence, bool):
            raise FrameError("'presence' must be true or false", code=ErrorCode.BAD_FRAME, ref=ref)
        return SubscribeJob(
            job_id, pos[0] if pos else None, pos[1] if pos else None, ref, presence=presence
        )
    if op == "unsubscribe":
        _target(obj, ref, "unsubscribe")
        if "room" in obj:
            kind, name = _room(obj["room"], ref)
            return Unsubscribe(room=f"{kind}:{name}", ref=ref)
        return Unsubscribe(job_id=_job_id(obj.get("job_id"), ref), ref=ref)
    if op == "pong":
        return Pong()
    if not isinstance(op, str):
        raise FrameError("a frame needs an 'op' string", code=ErrorCode.BAD_FRAME, ref=ref)
    raise FrameError(f"unknown op {op[:40]!r}", code=ErrorCode.UNKNOWN_OP, ref=ref)


def _ack(obj: Mapping[str, Any]) -> Ack:
    job_id, event_id = obj.get("job_id"), obj.get("id")
    try:
        if not isinstance(job_id, str) or not _JOB_ID_RE.match(job_id):
            raise ValueError("'job_id' must be a job id")
        parse_stream_id(event_id if isinstance(event_id, str) else "")
    except ValueError as exc:
        raise FrameError(f"ack ignored: {exc}", code=ErrorCode.BAD_FRAME, reply=False) from None
    assert isinstance(event_id, str)
    return Ack(job_id, event_id)
