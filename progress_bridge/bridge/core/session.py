"""The state of one WebSocket connection, decided from plain values. No I/O here.

:class:`Session` holds the protocol of ``docs/protocol.md`` for one connection — its
subscriptions, its per-job replay positions, its bounded outbox, its heartbeat clock and its
decision to close. It has no ``await``, no Redis client and no web framework: the endpoint
(:mod:`progress_bridge.bridge.endpoint`) feeds it client frames and the store's answers and
writes what :meth:`Session.take` returns; the hub (:mod:`progress_bridge.bridge.hub`) calls
:meth:`Session.deliver` for live entries.

Replay (the full contract is in ``docs/protocol.md``): while a subscribe is in progress the
session *holds* every live entry routed to it (the I/O layer registers the live subscription
before it reads history), then :meth:`Session.finish_job` queues the answer (``subscribed`` and
the history, as :mod:`.answers` decides) and the held entries whose id is greater than the last
id sent for their job. Ids compare as parsed ``(ms, seq)`` pairs, computed once per entry
(:attr:`.wire.FeedEntry.key`).

Beside it, each in its own module: client frame parsing (:mod:`.client_ops`), the inbound rate
limit (:mod:`.inbound_rate`), what a subscribe is answered with (:mod:`.answers`), the queue and
its batches (:mod:`.outbox`), the encoding of events (:mod:`.wire`). Why one module: the
subscription bookkeeping and the per-event delivery path share the per-job positions, the held
entries and the outbox, so splitting :class:`Session` across objects would add a call to every
delivered event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from ...access import Principal
from ...events.ids import parse_stream_id
from ...events.records import Replay
from ...events.snapshot import JobSnapshot
from ...exceptions import FrameError
from .answers import JobAnswer, job_answer, job_subscribed, room_subscribed
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
from .inbound_rate import InboundRate
from .limits import Limits
from .outbox import Control, Outbox, TakeResult
from .wire import PROTOCOL_VERSION, FeedEntry, WireFormat

__all__ = ["Session"]

#: The heartbeat frame, encoded once per format (every connection sends it).
_PING = {
    WireFormat.JSON: Control('{"op":"ping"}'),
    WireFormat.MSGPACK: Control(msgpack.packb({"op": "ping"})),
}


@dataclass(slots=True)
class _JobState:
    last_sent: tuple[int, int] | None = None
    explicit: bool = False  # subscribed by job (not only through a room)


class Session:
    """The protocol state of one connection; the I/O layer drives it.

    The I/O layer must: write :meth:`take` frames in order, calling it again whenever
    :meth:`deliver` or another method returns True ("flush me"); call :meth:`tick`
    about once a second; close with :attr:`close_code` as soon as it is set (nothing else is
    sent then).
    """

    def __init__(
        self,
        principal: Principal,
        fmt: WireFormat = WireFormat.JSON,
        limits: Limits | None = None,
        now: float = 0.0,
        *,
        expires_at: float | None = None,
        one_way: bool = False,
    ) -> None:
        """``expires_at``: when the connection's token expires, on the clock of ``now``; the
        connection is closed with 4001 then (the client reconnects with a fresh token).
        ``one_way``: the client cannot send frames (Server-Sent Events): no heartbeat is
        expected from it and none is queued for it (its transport sends its own keep-alive)."""
        self.principal = principal
        self._expires_at = expires_at
        self.one_way = one_way
        self.format = fmt
        self.limits = limits or Limits()
        self.close_code: int | None = None
        self.close_reason = ""
        self.rooms: set[str] = set()
        self.acks: dict[str, str] = {}
        #: Frames dropped without an answer (malformed acks).
        self.ignored = 0
        self._jobs: dict[str, _JobState] = {}
        self._held: list[FeedEntry] | None = None
        self.outbox = Outbox(fmt, self.limits.batch_max_events)
        self._last_received = now
        self._last_ping = now
        self._rate = InboundRate(self.limits, now)
        #: Bytes written to the socket but not read yet, as of the last tick.
        self._unread = 0
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
        return self.outbox.depth

    @property
    def outbox_bytes(self) -> int:
        return self.outbox.bytes

    def outbox_age(self, now: float) -> float:
        """Seconds since the writer last emptied a non-empty outbox (0 when empty)."""
        return self.outbox.age(now)

    @property
    def coalesced(self) -> int:
        """Progress updates replaced in the outbox by newer ones so far."""
        return self.outbox.coalesced

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
        if not self._rate.take(now):
            self._flooded(now)
            return None
        try:
            op = parse_client_frame(data, self.format)
        except FrameError as exc:
            if exc.reply:
                self.error(exc.code, str(exc), exc.ref, now)
            else:
                self.ignored += 1
            return None
        if isinstance(op, Pong):
            return None
        if isinstance(op, Ack):
            self.acks[op.job_id] = op.id
        return op

    def _flooded(self, now: float) -> None:
        """A frame was dropped by the rate limit: warn on the first strike, close at the last."""
        lim, strikes = self.limits, self._rate.strikes
        if strikes == 1:
            self.error(
                ErrorCode.RATE_LIMITED,
                f"more than {lim.rate_per_s:g} frames/s; frame dropped "
                "(keep flooding and the connection closes with 4029)",
                None,
                now,
            )
        elif strikes >= lim.rate_strikes:
            self.close(CloseCode.RATE_LIMITED, "inbound rate limit exceeded")

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
                code=ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                ref=op.ref,
            )

    def hold(self) -> None:
        """Start holding live entries (call before registering a new live subscription)."""
        if self._held is None:
            self._held = []

    def release(self, now: float) -> bool:
        """Stop holding: deliver held entries not already sent. Returns "flush me"."""
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
        presence: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue the answer to a job subscribe, then release held entries.

        Pass ``snapshot`` for a subscribe without a position, ``replay`` otherwise;
        ``presence`` (who watches the job, see :meth:`presence`) goes into the answer.
        """
        self._jobs.pop(op.job_id, None)
        st = _JobState(explicit=True)
        self._jobs[op.job_id] = st
        before = self.outbox.bytes
        answer = job_answer(replay=replay, snapshot=snapshot, after=op.last_id)
        self._answer_job(st, answer, now, job_subscribed(op.job_id, op.ref, answer, presence))
        self._rate.charge_answer(self.outbox.bytes - before)
        return self.release(now)

    def _answer_job(
        self, st: _JobState, answer: JobAnswer, now: float, frame: Mapping[str, Any] | None
    ) -> None:
        """Queue a job's answer: its ``subscribed`` frame (None in a room's answer, which has one
        frame for all its jobs), then its history, moving the job's position along."""
        if answer.resumes_after is not None:
            st.last_sent = answer.resumes_after
        if frame is not None:
            self._push_control(frame, now)
        for stored in answer.entries:
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
        before = self.outbox.bytes
        for snap in snapshots:
            st = self._jobs.setdefault(snap.job_id, _JobState())
            st.last_sent = parse_stream_id(snap.last_id)
        self._push_control(room_subscribed(op, snapshots, replays), now)
        for replay in replays:
            st = self._jobs.setdefault(replay.job_id, _JobState())
            st.last_sent = None
            position = op.positions.get(replay.job_id)
            answer = job_answer(
                replay=replay, snapshot=None, after=position[1] if position else None
            )
            self._answer_job(st, answer, now, None)
        self._rate.charge_answer(self.outbox.bytes - before)
        return self.release(now)

    def fail_subscribe(
        self, op: SubscribeJob | SubscribeRoom, code: str, message: str, now: float
    ) -> bool:
        """Answer a subscribe with an error and release held entries.

        Entries of a refused job are dropped, not released, unless the connection already
        watched the job by id (an earlier, authorized subscribe): a failed subscribe never
        delivers an event of its job.
        """
        self.error(code, message, op.ref, now)
        if isinstance(op, SubscribeJob) and self._held and not self.watches_job(op.job_id):
            self._held = [entry for entry in self._held if entry.job_id != op.job_id]
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

    def presence(self, job_id: str, watching: int, users: list[str] | None, now: float) -> bool:
        """Tell the client who watches a job it subscribed to (``users`` for admins only).
        Returns "flush me"."""
        if not self.watches_job(job_id):
            return False
        frame: dict[str, Any] = {"op": "presence", "job_id": job_id, "watching": watching}
        if users is not None:
            frame["users"] = users
        return self._push_control(frame, now)

    def watches_job(self, job_id: str) -> bool:
        st = self._jobs.get(job_id)
        return st is not None and st.explicit

    # -- outbound ----------------------------------------------------------------------------

    def deliver(self, entry: FeedEntry, now: float) -> bool:
        """Queue one live entry (the fan-out fast path). Returns "flush me"."""
        if self._held is not None:
            self._held.append(entry)
            return False
        st = self._jobs.get(entry.job_id) or self._room_job(entry.job_id)
        if st is not None:
            if st.last_sent is not None and entry.key <= st.last_sent:
                return False  # already sent (replayed or in a snapshot)
            st.last_sent = entry.key
        return self._push(entry, now)

    def _room_job(self, job_id: str) -> _JobState | None:
        """A job first heard of through a room: its position from now on (so an entry routed
        twice — a gap read back after a lost notification — is sent once)."""
        if not self.rooms:
            return None
        st = self._jobs[job_id] = _JobState()
        return st

    def deliver_now(self, entry: FeedEntry) -> bool:
        """Mark one live entry sent without queueing it, for a caller that writes it at once.

        Only when nothing is queued (so frames stay in order), held or closing, and the entry
        is new for its job; False otherwise, and the caller uses :meth:`deliver`, which queues
        the entry or drops the duplicate.
        """
        if self.outbox.depth or self._held is not None or self.close_code is not None:
            return False
        st = self._jobs.get(entry.job_id) or self._room_job(entry.job_id)
        if st is not None:
            last = st.last_sent
            if last is not None and entry.key <= last:
                return False
            st.last_sent = entry.key
        return True

    def error(self, code: str, message: str, ref: str | int | None, now: float) -> bool:
        return self._push_control(
            {"op": "error", "ref": ref, "code": code, "message": message}, now
        )

    def close(self, code: int, reason: str = "") -> None:
        """Decide to close; the outbox is dropped (the client resumes by replay)."""
        if self.close_code is None:
            self.close_code = int(code)
            self.close_reason = reason
            self.outbox.clear()

    def tick(self, now: float, unread_bytes: int = 0, unread_age: float = 0.0) -> bool:
        """Heartbeat and slow-consumer checks, about once a second. Returns "flush me".

        ``unread_bytes`` and ``unread_age``: what the I/O layer wrote that the peer has not read
        yet (a transport's buffer and the kernel's send queue) and how long its oldest byte has
        waited. Frames written at once are out of the outbox but not read yet, so the bound
        counts them too: the outbox and those bytes together may hold ``outbox_max_bytes``,
        and their oldest frame may wait ``outbox_max_age_s`` (a stalled reader), before the
        close 4008.
        """
        if self.close_code is not None:
            return True
        lim = self.limits
        if not self.one_way and now - self._last_received > 2 * lim.heartbeat_s:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
            return True
        if self._expires_at is not None and now >= self._expires_at:
            self.close(CloseCode.UNAUTHENTICATED, "token expired")
            return True
        self._unread = unread_bytes
        age = max(self.outbox.age(now), unread_age)
        if age > lim.outbox_max_age_s:
            self.close(
                CloseCode.SLOW_CONSUMER,
                f"slow consumer: a frame waited {age:.1f} s (over {lim.outbox_max_age_s:g} s)",
            )
            return True
        if self._over_bound():
            return True
        if not self.one_way and now - self._last_ping >= lim.heartbeat_s:
            self._last_ping = now
            return self._push_frame(_PING[self.format], now)
        return False

    def take(self) -> TakeResult:
        """Everything queued, as frames: consecutive events become one ``batch`` frame."""
        return self.outbox.take()

    def encode(self, obj: Mapping[str, Any]) -> str | bytes:
        if self.format is WireFormat.MSGPACK:
            packed: bytes = msgpack.packb(obj)
            return packed
        text: str = json.dumps(obj, separators=(",", ":"))
        return text

    def _push_control(self, obj: Mapping[str, Any], now: float) -> bool:
        return self._push_frame(Control(self.encode(obj)), now)

    def _push_frame(self, item: Control, now: float) -> bool:
        if self.close_code is not None:
            return False
        self.outbox.push_control(item, now)
        self._check_bound()
        return True

    def _push(self, entry: FeedEntry, now: float) -> bool:
        if self.close_code is not None:
            return False
        self.outbox.push(entry, now)
        self._check_bound()
        return True

    def _check_bound(self) -> None:
        self._over_bound()

    def _over_bound(self) -> bool:
        """Close 4008 past the outbox bound (frames, or bytes with the unread ones)."""
        outbox, lim = self.outbox, self.limits
        size = outbox.bytes + self._unread
        if outbox.depth > lim.outbox_max_frames or size > lim.outbox_max_bytes:
            self.close(
                CloseCode.SLOW_CONSUMER,
                f"slow consumer: {outbox.depth} frames, {size} bytes unread "
                f"(bound {lim.outbox_max_frames} frames, {lim.outbox_max_bytes} bytes)",
            )
            return True
        return False
