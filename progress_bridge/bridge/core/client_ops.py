"""What a client may ask, parsed from untrusted bytes: the client ops and their one parser.

:func:`parse_client_frame` turns one client frame (JSON text, or msgpack bytes on a
``progress.v1.msgpack`` connection) into a typed op — :class:`SubscribeJob`,
:class:`SubscribeRoom`, :class:`Unsubscribe`, :class:`Ack` or :class:`Pong` — or raises
:class:`~progress_bridge.exceptions.FrameError` with the protocol's error code for the mistake
(``docs/protocol.md``). Every field is validated here, once, so the session and the asyncio layer
only ever see well-formed ops. This is the inbound half of the wire: the outbound half (encoding,
shared by every socket on the hot path) is :mod:`.wire`; the pydantic models of
:mod:`.frames` are the contract both are tested against. Pure; no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack

from ...events.ids import parse_stream_id
from ...events.schema import JOB_ID_PATTERN
from ...exceptions import FrameError
from .codes import ErrorCode
from .wire import MSGPACK_SUBPROTOCOL, WireFormat

__all__ = [
    "MAX_ROOM_POSITIONS",
    "Ack",
    "ClientOp",
    "Pong",
    "SubscribeJob",
    "SubscribeRoom",
    "Unsubscribe",
    "parse_client_frame",
]

_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
_MAX_REF = 64
_MAX_EPOCH = 64
_MAX_ROOM_NAME = 200
#: Job positions one room subscribe may carry (each costs a replay read).
MAX_ROOM_POSITIONS = 100


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
