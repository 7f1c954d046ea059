"""The bridge's protocol core: what to send, decided from plain values. No I/O here.

This module holds the wire protocol of ``docs/protocol.md`` (version :data:`PROTOCOL_VERSION`):
client frame parsing, server frame encoding (JSON text and msgpack), and :class:`Session`, the
state of one WebSocket connection — its subscriptions, its per-job replay positions, its bounded
outbox with coalescing, its inbound rate limit and its heartbeat clock. It has no ``await``, no
Redis client and no web framework: :mod:`.asgi` feeds it frames and Redis answers and writes what
:meth:`Session.take` returns; :mod:`.fanout` calls :meth:`Session.deliver` for live entries.

Replay (the full contract is in ``docs/protocol.md``): while a subscribe is in progress the
session *holds* every live entry routed to it (the I/O layer registers the live subscription
before it reads history), then :meth:`Session.finish_job` queues ``subscribed``, the history, and
the held entries whose id is greater than the last id sent for their job. Ids compare as parsed
``(ms, seq)`` pairs (:func:`~progress_bridge.keys.parse_stream_id`), computed once per entry.

Each event is encoded once per wire format: :class:`FeedEntry` caches its JSON and msgpack
forms, and every session that sends it shares them. A writer that finds several events queued
sends them as one ``batch`` frame built by concatenating the pre-encoded events.
"""

from __future__ import annotations

import enum
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack

from .events import JOB_ID_PATTERN
from .exceptions import ProtocolError
from .keys import parse_stream_id
from .snapshot import JobSnapshot
from .streams import Replay, StoredEntry, with_position

__all__ = [
    "COALESCED_TYPES",
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "PROTOCOL_VERSION",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "Ack",
    "ClientOp",
    "CloseCode",
    "FeedEntry",
    "FrameError",
    "Limits",
    "Pong",
    "Principal",
    "Session",
    "SubscribeJob",
    "SubscribeRoom",
    "TakeResult",
    "Unsubscribe",
    "WireFormat",
    "negotiate",
    "parse_client_frame",
]

PROTOCOL_VERSION = 1
JSON_SUBPROTOCOL = "progress.v1.json"
MSGPACK_SUBPROTOCOL = "progress.v1.msgpack"
TOKEN_SUBPROTOCOL_PREFIX = "token."

#: Event types a lagging connection's outbox coalesces per job (latest wins). Every other type
#: is delivered, in order, or the connection is closed with 4008.
COALESCED_TYPES = frozenset({"processing_progress", "export_progress"})

_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
_MAX_REF = 64
_MAX_EPOCH = 64
_MAX_ROOM_NAME = 200


class WireFormat(enum.StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


class CloseCode(enum.IntEnum):
    """Every close code the bridge sends (documented in ``docs/protocol.md``)."""

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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection or request acts for: the token's ``sub``, ``admin`` and ``jobs``."""

    user: str
    admin: bool = False
    jobs: frozenset[str] = frozenset()

    def may_watch(self, job_id: str, owner: str | None) -> bool:
        """A user sees the jobs they own and those their token grants; an admin sees all."""
        return self.admin or (owner is not None and owner == self.user) or job_id in self.jobs

    def may_join_user_room(self, name: str) -> bool:
        return self.admin or name == self.user


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
        "_ckey",
        "_data",
        "_json_event",
        "_json_frame",
        "_mp_event",
        "_mp_frame",
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
        self._ckey = (
            (job_id, self.type, self.export_id or "") if self.type in COALESCED_TYPES else None
        )
        self._json_event: str | None = None
        self._json_frame: str | None = None
        self._mp_event: bytes | None = None
        self._mp_frame: bytes | None = None

    @classmethod
    def from_stored(cls, entry: StoredEntry) -> FeedEntry:
        return cls(entry.job_id, entry.id, entry.epoch, entry.payload)

    @property
    def coalesce_key(self) -> tuple[str, str, str] | None:
        """Entries with the same key replace each other in a lagging outbox; None: never."""
        return self._ckey

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

    def __repr__(self) -> str:
        return f"FeedEntry({self.job_id!r}, {self.id!r}, {self.type!r})"


# -- Client frames -----------------------------------------------------------------------------


class FrameError(ProtocolError):
    """A client frame was refused; ``code`` and ``ref`` go back in an ``error`` frame."""

    def __init__(self, message: str, *, code: str, ref: str | int | None = None) -> None:
        super().__init__(message, code=code)
        self.ref = ref


@dataclass(frozen=True, slots=True)
class SubscribeJob:
    job_id: str
    epoch: str | None = None
    last_id: str | None = None
    ref: str | int | None = None


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
                raise FrameError("binary frames are not JSON; send text frames", code="bad_json")
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
        else:
            obj = json.loads(data)
    except FrameError:
        raise
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        what = "msgpack" if isinstance(data, bytes) else "JSON"
        raise FrameError(f"frame is not valid {what}: {exc}", code="bad_json") from None
    except Exception as exc:  # msgpack raises assorted errors on garbage
        raise FrameError(f"frame is not valid msgpack: {exc}", code="bad_json") from None
    if not isinstance(obj, dict):
        raise FrameError("a frame must be an object with an 'op'", code="bad_frame")
    return obj


def _ref(obj: Mapping[str, Any]) -> str | int | None:
    ref = obj.get("ref")
    if ref is None or (isinstance(ref, int) and not isinstance(ref, bool)):
        return ref
    if isinstance(ref, str) and len(ref) <= _MAX_REF:
        return ref
    raise FrameError(f"'ref' must be a string of at most {_MAX_REF} characters", code="bad_frame")


def _job_id(value: Any, ref: str | int | None, name: str = "job_id") -> str:
    if not isinstance(value, str) or not _JOB_ID_RE.match(value):
        raise FrameError(f"'{name}' must be a job id", code="bad_frame", ref=ref)
    return value


def _position(
    epoch: Any, last_id: Any, ref: str | int | None, where: str = ""
) -> tuple[str, str] | None:
    if epoch is None and last_id is None:
        return None
    if not isinstance(epoch, str) or not epoch or len(epoch) > _MAX_EPOCH:
        raise FrameError(f"'last_id'{where} needs its 'epoch'", code="invalid_position", ref=ref)
    if not isinstance(last_id, str):
        raise FrameError(f"'epoch'{where} needs a 'last_id'", code="invalid_position", ref=ref)
    try:
        parse_stream_id(last_id)
    except ValueError as exc:
        raise FrameError(f"{exc}{where}", code="invalid_position", ref=ref) from None
    return epoch, last_id


def _room(value: Any, ref: str | int | None) -> tuple[Literal["user", "document"], str]:
    if isinstance(value, str):
        kind, sep, name = value.partition(":")
        if sep and name and len(name) <= _MAX_ROOM_NAME:
            if kind == "user":
                return "user", name
            if kind == "document":
                return "document", name
    raise FrameError("'room' must be 'user:<name>' or 'document:<id>'", code="bad_frame", ref=ref)


def parse_client_frame(data: str | bytes, fmt: WireFormat = WireFormat.JSON) -> ClientOp:
    """Parse one client frame.

    Raises:
        FrameError: with the protocol's error ``code`` (``bad_json``, ``bad_frame``,
            ``unknown_op``, ``invalid_position``) and the frame's ``ref`` when it had one.
    """
    obj = _decode(data, fmt)
    ref = _ref(obj)
    op = obj.get("op")
    if op == "subscribe":
        if "room" in obj:
            kind, name = _room(obj["room"], ref)
            raw_positions = obj.get("positions") or {}
            if not isinstance(raw_positions, dict):
                raise FrameError("'positions' must be an object", code="bad_frame", ref=ref)
            positions: dict[str, tuple[str, str]] = {}
            for job, pos in raw_positions.items():
                job = _job_id(job, ref, "positions")
                if not isinstance(pos, dict):
                    raise FrameError(
                        "each position must be {epoch, last_id}", code="bad_frame", ref=ref
                    )
                parsed = _position(pos.get("epoch"), pos.get("last_id"), ref, f" (job {job})")
                if parsed is not None:
                    positions[job] = parsed
            return SubscribeRoom(obj["room"], kind, name, positions, ref)
        job_id = _job_id(obj.get("job_id"), ref)
        pos = _position(obj.get("epoch"), obj.get("last_id"), ref)
        return SubscribeJob(job_id, pos[0] if pos else None, pos[1] if pos else None, ref)
    if op == "unsubscribe":
        if "room" in obj:
            kind, name = _room(obj["room"], ref)
            return Unsubscribe(room=f"{kind}:{name}", ref=ref)
        return Unsubscribe(job_id=_job_id(obj.get("job_id"), ref), ref=ref)
    if op == "ack":
        job_id = _job_id(obj.get("job_id"), ref)
        event_id = obj.get("id")
        try:
            parse_stream_id(event_id if isinstance(event_id, str) else "")
        except ValueError:
            raise FrameError("'id' must be a stream id", code="bad_frame", ref=ref) from None
        assert isinstance(event_id, str)
        return Ack(job_id, event_id)
    if op == "pong":
        return Pong()
    if not isinstance(op, str):
        raise FrameError("a frame needs an 'op' string", code="bad_frame", ref=ref)
    raise FrameError(f"unknown op {op[:40]!r}", code="unknown_op", ref=ref)


# -- Sessions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (from :class:`~progress_bridge.config.Settings`)."""

    heartbeat_s: float = 15.0
    max_frame_bytes: int = 65_536
    max_subscriptions: int = 200
    rate_per_s: float = 20.0
    rate_burst: int = 40
    rate_strikes: int = 50
    outbox_max_frames: int = 20_000
    outbox_max_bytes: int = 16 * 1024 * 1024
    outbox_max_age_s: float = 30.0
    batch_max_events: int = 500


class _Control:
    """A frame for one session only (hello, subscribed, error...), encoded at creation."""

    __slots__ = ("frame", "size")

    def __init__(self, frame: str | bytes) -> None:
        self.frame = frame
        self.size = len(frame)


# Outbox items: a FeedEntry or a _Control, or for coalescable entries a one-item list (a slot
# set to None when a newer update of the same key replaces it).
_Slot = list[FeedEntry | None]
_Item = FeedEntry | _Control | _Slot


@dataclass(slots=True)
class _JobState:
    last_sent: tuple[int, int] | None = None
    explicit: bool = False  # subscribed by job (not only through a room)


@dataclass(frozen=True, slots=True)
class TakeResult:
    """Frames to write now, in order, and what they carry (for metrics)."""

    frames: list[str | bytes]
    events: int
    oldest_ts: float | None


class Session:
    """The protocol state of one connection; the I/O layer drives it.

    The I/O layer must: write :meth:`take` frames in order, calling it again whenever
    :meth:`deliver` or another method returns True ("wake the writer"); call :meth:`tick`
    about once a second; close with :attr:`close_code` as soon as it is set (nothing else is
    sent then).
    """

    def __init__(
        self,
        principal: Principal,
        fmt: WireFormat = WireFormat.JSON,
        limits: Limits | None = None,
        now: float = 0.0,
    ) -> None:
        self.principal = principal
        self.format = fmt
        self.limits = limits or Limits()
        self.close_code: int | None = None
        self.close_reason = ""
        self.rooms: set[str] = set()
        self.acks: dict[str, str] = {}
        self.coalesced = 0
        self._jobs: dict[str, _JobState] = {}
        self._held: list[FeedEntry] | None = None
        self._outbox: deque[_Item] = deque()
        self._coalesce: dict[tuple[str, str, str], _Slot] = {}
        self._depth = 0
        self._bytes = 0
        self._pending_since = now
        self._last_received = now
        self._last_ping = now
        self._tokens = float(self.limits.rate_burst)
        self._tokens_at = now
        self._strikes = 0
        self._push_control(
            {
                "op": "hello",
                "protocol": PROTOCOL_VERSION,
                "user": principal.user,
                "heartbeat_s": self.limits.heartbeat_s,
                "max_frame_bytes": self.limits.max_frame_bytes,
            },
            now,
        )

    # -- introspection ---------------------------------------------------------------------

    @property
    def outbox_depth(self) -> int:
        return self._depth

    @property
    def outbox_bytes(self) -> int:
        return self._bytes

    def outbox_age(self, now: float) -> float:
        """Seconds since the writer last emptied a non-empty outbox (0 when empty)."""
        return now - self._pending_since if self._depth else 0.0

    @property
    def jobs(self) -> list[str]:
        """Jobs subscribed by id (not those seen only through a room)."""
        return [job for job, st in self._jobs.items() if st.explicit]

    @property
    def subscription_count(self) -> int:
        return len(self.jobs) + len(self.rooms)

    def last_sent(self, job_id: str) -> tuple[int, int] | None:
        st = self._jobs.get(job_id)
        return st.last_sent if st else None

    # -- inbound -----------------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> ClientOp | None:
        """Take one client frame; return the op the I/O layer must carry out, if any.

        Pongs, acks and refused frames are handled here (an ``error`` frame is queued or
        :attr:`close_code` is set); subscribes and unsubscribes are returned.
        """
        if self.close_code is not None:
            return None
        self._last_received = now
        if len(data) > self.limits.max_frame_bytes:
            self.close(CloseCode.TOO_BIG, "frame too large")
            return None
        if not self._take_token(now):
            return None
        try:
            op = parse_client_frame(data, self.format)
        except FrameError as exc:
            self.error(exc.code, str(exc), exc.ref, now)
            return None
        if isinstance(op, Pong):
            return None
        if isinstance(op, Ack):
            self.acks[op.job_id] = op.id
            return op
        return op

    def _take_token(self, now: float) -> bool:
        lim = self.limits
        self._tokens = min(
            float(lim.rate_burst), self._tokens + (now - self._tokens_at) * lim.rate_per_s
        )
        self._tokens_at = now
        if self._tokens >= 1.0:
            if self._tokens >= lim.rate_burst - 1:
                self._strikes = 0  # the client calmed down: forgive earlier flooding
            self._tokens -= 1.0
            return True
        self._strikes += 1
        if self._strikes == 1:
            self.error(
                "rate_limited",
                f"more than {lim.rate_per_s:g} frames/s; frame dropped "
                "(keep flooding and the connection closes with 4029)",
                None,
                now,
            )
        elif self._strikes >= lim.rate_strikes:
            self.close(CloseCode.RATE_LIMITED, "inbound rate limit exceeded")
        return False

    # -- subscriptions -----------------------------------------------------------------------

    def check_subscribe(self, op: SubscribeJob | SubscribeRoom) -> None:
        """Refuse a subscribe that would exceed the limit (re-subscribing is always allowed).

        Raises:
            FrameError: ``too_many_subscriptions``.
        """
        if isinstance(op, SubscribeJob):
            st = self._jobs.get(op.job_id)
            new = st is None or not st.explicit
        else:
            new = op.room not in self.rooms
        if new and self.subscription_count >= self.limits.max_subscriptions:
            raise FrameError(
                f"at most {self.limits.max_subscriptions} subscriptions per connection",
                code="too_many_subscriptions",
                ref=op.ref,
            )

    def hold(self) -> None:
        """Start holding live entries (call before registering a new live subscription)."""
        if self._held is None:
            self._held = []

    def release(self, now: float) -> bool:
        """Stop holding: deliver held entries not already sent. Returns "wake the writer"."""
        held, self._held = self._held, None
        wake = False
        for entry in held or ():
            wake = self.deliver(entry, now) or wake
        return wake

    def finish_job(
        self,
        op: SubscribeJob,
        now: float,
        *,
        replay: Replay | None = None,
        snapshot: JobSnapshot | None = None,
    ) -> bool:
        """Queue the answer to a job subscribe, then release held entries.

        Pass ``snapshot`` for a subscribe without a position, ``replay`` otherwise.
        """
        self._jobs.pop(op.job_id, None)
        st = _JobState(explicit=True)
        self._jobs[op.job_id] = st
        self._answer_job(st, op.job_id, now, replay=replay, snapshot=snapshot, ref=op.ref)
        return self.release(now)

    def _answer_job(
        self,
        st: _JobState,
        job_id: str,
        now: float,
        *,
        replay: Replay | None,
        snapshot: JobSnapshot | None,
        ref: str | int | None,
        room: str | None = None,
    ) -> None:
        entries: list[StoredEntry] = []
        if replay is not None:
            recovered, reason, epoch = replay.recovered, replay.reason, replay.epoch
            if replay.recovered:
                entries = replay.entries
            snapshot = replay.snapshot
        else:
            recovered, reason = True, "ok"
            epoch = snapshot.epoch if snapshot else None
        if snapshot is not None:
            st.last_sent = parse_stream_id(snapshot.last_id)
        if room is None:
            self._push_control(
                {
                    "op": "subscribed",
                    "ref": ref,
                    "job_id": job_id,
                    "recovered": recovered,
                    "reason": reason,
                    "epoch": epoch,
                    "snapshot": snapshot.model_dump(mode="json") if snapshot else None,
                },
                now,
            )
        for stored in entries:
            entry = FeedEntry.from_stored(stored)
            st.last_sent = entry.key
            self._push(entry, now)

    def finish_room(
        self,
        op: SubscribeRoom,
        now: float,
        *,
        snapshots: list[JobSnapshot],
        replays: list[Replay],
    ) -> bool:
        """Queue the answer to a room subscribe (listed jobs, then per-job replays)."""
        self.rooms.add(op.room)
        for snap in snapshots:
            st = self._jobs.setdefault(snap.job_id, _JobState())
            st.last_sent = parse_stream_id(snap.last_id)
        self._push_control(
            {
                "op": "subscribed",
                "ref": op.ref,
                "room": op.room,
                "recovered": all(r.recovered for r in replays),
                "reason": "ok",
                "epoch": None,
                "snapshot": None,
                "jobs": [s.model_dump(mode="json") for s in snapshots],
                "replays": [
                    {
                        "job_id": r.job_id,
                        "recovered": r.recovered,
                        "reason": r.reason,
                        "epoch": r.epoch,
                        "snapshot": r.snapshot.model_dump(mode="json") if r.snapshot else None,
                    }
                    for r in replays
                ],
            },
            now,
        )
        for replay in replays:
            st = self._jobs.setdefault(replay.job_id, _JobState())
            st.last_sent = None
            self._answer_job(
                st, replay.job_id, now, replay=replay, snapshot=None, ref=op.ref, room=op.room
            )
        return self.release(now)

    def fail_subscribe(
        self, op: SubscribeJob | SubscribeRoom, code: str, message: str, now: float
    ) -> bool:
        """Answer a subscribe with an error and release held entries."""
        self.error(code, message, op.ref, now)
        return self.release(now)

    def unsubscribe(self, op: Unsubscribe, now: float) -> bool:
        if op.job_id is not None:
            self._jobs.pop(op.job_id, None)
            target: dict[str, Any] = {"job_id": op.job_id}
        else:
            assert op.room is not None
            self.rooms.discard(op.room)
            target = {"room": op.room}
        return self._push_control({"op": "unsubscribed", "ref": op.ref, **target}, now)

    def watches_job(self, job_id: str) -> bool:
        st = self._jobs.get(job_id)
        return st is not None and st.explicit

    # -- outbound ----------------------------------------------------------------------------

    def deliver(self, entry: FeedEntry, now: float) -> bool:
        """Queue one live entry (the fan-out fast path). Returns "wake the writer"."""
        if self.close_code is not None:
            return False
        if self._held is not None:
            self._held.append(entry)
            return False
        st = self._jobs.get(entry.job_id)
        if st is not None:
            if st.last_sent is not None and entry.key <= st.last_sent:
                return False  # already sent (replayed or in a snapshot)
            st.last_sent = entry.key
        return self._push(entry, now)

    def error(self, code: str, message: str, ref: str | int | None, now: float) -> bool:
        return self._push_control(
            {"op": "error", "ref": ref, "code": code, "message": message}, now
        )

    def close(self, code: int, reason: str = "") -> None:
        """Decide to close; the outbox is dropped (the client resumes by replay)."""
        if self.close_code is None:
            self.close_code = int(code)
            self.close_reason = reason
            self._outbox.clear()
            self._coalesce.clear()
            self._depth = self._bytes = 0

    def tick(self, now: float) -> bool:
        """Heartbeat and stall checks, about once a second. Returns "wake the writer"."""
        if self.close_code is not None:
            return True
        lim = self.limits
        if now - self._last_received > 2 * lim.heartbeat_s:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
            return True
        if self._depth and self.outbox_age(now) > lim.outbox_max_age_s:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: outbox stalled")
            return True
        if now - self._last_ping >= lim.heartbeat_s:
            self._last_ping = now
            return self._push_control({"op": "ping"}, now)
        return False

    def take(self) -> TakeResult:
        """Everything queued, as frames: consecutive events become one ``batch`` frame."""
        frames: list[str | bytes] = []
        run: list[FeedEntry] = []
        events = 0
        oldest: float | None = None
        limit = self.limits.batch_max_events
        outbox = self._outbox
        coalesce = self._coalesce
        while outbox:
            item = outbox.popleft()
            if isinstance(item, list):
                slot = item
                entry = slot[0]
                if entry is None:
                    continue  # replaced by a newer update further back
                key = entry._ckey
                if key is not None and coalesce.get(key) is slot:
                    del coalesce[key]
                item = entry
            if isinstance(item, FeedEntry):
                if oldest is None or item.ts < oldest:
                    oldest = item.ts
                run.append(item)
                events += 1
                if len(run) >= limit:
                    frames.append(self._events_frame(run))
                    run = []
            else:
                assert isinstance(item, _Control)
                if run:
                    frames.append(self._events_frame(run))
                    run = []
                frames.append(item.frame)
        if run:
            frames.append(self._events_frame(run))
        self._depth = self._bytes = 0
        return TakeResult(frames, events, oldest)

    def _events_frame(self, run: list[FeedEntry]) -> str | bytes:
        if self.format is WireFormat.MSGPACK:
            if len(run) == 1:
                return run[0].mp_frame()
            return (
                _MP_BATCH_PREFIX + _mp_array_header(len(run)) + b"".join(e.mp_event() for e in run)
            )
        if len(run) == 1:
            return run[0].json_frame()
        return '{"op":"batch","events":[' + ",".join(e.json_event() for e in run) + "]}"

    def encode(self, obj: Mapping[str, Any]) -> str | bytes:
        if self.format is WireFormat.MSGPACK:
            packed: bytes = msgpack.packb(obj)
            return packed
        text: str = json.dumps(obj, separators=(",", ":"))
        return text

    def _push_control(self, obj: Mapping[str, Any], now: float) -> bool:
        if self.close_code is not None:
            return False
        item = _Control(self.encode(obj))
        self._outbox.append(item)
        if not self._depth:
            self._pending_since = now
        self._depth += 1
        self._bytes += item.size
        return self._check_bound()

    def _push(self, entry: FeedEntry, now: float) -> bool:
        if not self._depth:
            self._pending_since = now
        key = entry._ckey
        if key is None:
            self._outbox.append(entry)
        else:
            old = self._coalesce.get(key)
            if old is not None:
                replaced = old[0]
                if replaced is not None:
                    # Latest wins: drop the queued update and queue the new one at the end, so
                    # ids still increase on the wire.
                    self._bytes -= replaced.size
                    self._depth -= 1
                    old[0] = None
                    self.coalesced += 1
            slot: _Slot = [entry]
            self._coalesce[key] = slot
            self._outbox.append(slot)
        self._depth += 1
        self._bytes += entry.size
        lim = self.limits
        if self._depth > lim.outbox_max_frames or self._bytes > lim.outbox_max_bytes:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: outbox full")
        return True

    def _check_bound(self) -> bool:
        lim = self.limits
        if self._depth > lim.outbox_max_frames or self._bytes > lim.outbox_max_bytes:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: outbox full")
        return True
