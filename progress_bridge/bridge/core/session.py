"""The state of one WebSocket connection, decided from plain values. No I/O here.

:class:`Session` holds the protocol of ``docs/protocol.md`` for one connection — its
subscriptions, its per-job replay positions, its bounded outbox with coalescing, its inbound
rate limit and its heartbeat clock. It has no ``await``, no Redis client and no web framework:
the endpoint (:mod:`progress_bridge.bridge.endpoint`) feeds it client frames and the store's
answers and writes what :meth:`Session.take` returns; the hub
(:mod:`progress_bridge.bridge.hub`) calls :meth:`Session.deliver` for live entries.

Replay (the full contract is in ``docs/protocol.md``): while a subscribe is in progress the
session *holds* every live entry routed to it (the I/O layer registers the live subscription
before it reads history), then :meth:`Session.finish_job` queues ``subscribed``, the history, and
the held entries whose id is greater than the last id sent for their job. Ids compare as parsed
``(ms, seq)`` pairs (:func:`~progress_bridge.events.ids.parse_stream_id`), computed once per entry.

Each event is encoded once per wire format: :class:`FeedEntry` caches its JSON and msgpack
forms, and every session that sends it shares them. A writer that finds several events queued
sends them as one ``batch`` frame built by concatenating the pre-encoded events.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from ...access import Principal
from ...events.ids import parse_stream_id
from ...events.records import Replay, StoredEntry
from ...events.snapshot import JobSnapshot
from ...exceptions import FrameError
from .codes import CloseCode, ErrorCode
from .limits import Limits
from .wire import (
    PROTOCOL_VERSION,
    Ack,
    ClientOp,
    FeedEntry,
    Pong,
    SubscribeJob,
    SubscribeRoom,
    Unsubscribe,
    WireFormat,
    events_frame,
    parse_client_frame,
)

__all__ = ["Session", "TakeResult"]


# -- Sessions ----------------------------------------------------------------------------------


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


#: The heartbeat frame, encoded once per format (every connection sends it).
_PING = {
    WireFormat.JSON: _Control('{"op":"ping"}'),
    WireFormat.MSGPACK: _Control(msgpack.packb({"op": "ping"})),
}


@dataclass(slots=True)
class _JobState:
    last_sent: tuple[int, int] | None = None
    explicit: bool = False  # subscribed by job (not only through a room)


@dataclass(frozen=True, slots=True)
class TakeResult:
    """Frames to write now, in order, and what they carry (for metrics).

    ``single`` is the entry when the take is exactly its one ``event`` frame, whose WebSocket
    bytes it has cached (:meth:`FeedEntry.wire_frame`) for every session of the same format.
    """

    frames: list[str | bytes]
    events: int
    oldest_ts: float | None
    single: FeedEntry | None = None


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
                ErrorCode.RATE_LIMITED,
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
                code=ErrorCode.TOO_MANY_SUBSCRIPTIONS,
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
        self._answer_job(
            st, op.job_id, now, replay=replay, snapshot=snapshot, ref=op.ref, after=op.last_id
        )
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
        after: str | None = None,
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
        elif recovered and after is not None:
            # The client has everything up to its position: a live entry at or before it (one
            # the feed reader had not routed yet when the subscribe registered) is not resent.
            st.last_sent = parse_stream_id(after)
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
            position = op.positions.get(replay.job_id)
            self._answer_job(
                st,
                replay.job_id,
                now,
                replay=replay,
                snapshot=None,
                ref=op.ref,
                room=op.room,
                after=position[1] if position else None,
            )
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

    def watches_job(self, job_id: str) -> bool:
        st = self._jobs.get(job_id)
        return st is not None and st.explicit

    # -- outbound ----------------------------------------------------------------------------

    def deliver(self, entry: FeedEntry, now: float) -> bool:
        """Queue one live entry (the fan-out fast path). Returns "wake the writer"."""
        if self._held is not None:
            self._held.append(entry)
            return False
        st = self._jobs.get(entry.job_id)
        if st is not None:
            if st.last_sent is not None and entry.key <= st.last_sent:
                return False  # already sent (replayed or in a snapshot)
            st.last_sent = entry.key
        return self._push(entry, now)

    def deliver_now(self, entry: FeedEntry) -> bool:
        """Mark one live entry sent without queueing it, for a caller that writes it at once.

        Only when nothing is queued (so frames stay in order), held or closing, and the entry
        is new for its job; False otherwise, and the caller uses :meth:`deliver`, which queues
        the entry or drops the duplicate.
        """
        if self._depth or self._held is not None or self.close_code is not None:
            return False
        st = self._jobs.get(entry.job_id)
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
            return self._push_frame(_PING[self.format], now)
        return False

    def take(self) -> TakeResult:
        """Everything queued, as frames: consecutive events become one ``batch`` frame."""
        outbox = self._outbox
        entry = outbox[0] if len(outbox) == 1 else None
        if isinstance(entry, FeedEntry):
            # The common live case (one event since the last take): no run, no loop.
            outbox.pop()
            self._depth = self._bytes = 0
            frame = entry.mp_frame() if self.format is WireFormat.MSGPACK else entry.json_frame()
            return TakeResult([frame], 1, entry.ts, entry)
        frames: list[str | bytes] = []
        run: list[FeedEntry] = []
        events = 0
        oldest: float | None = None
        limit = self.limits.batch_max_events
        coalesce = self._coalesce
        while outbox:
            item = outbox.popleft()
            if isinstance(item, list):
                slot = item
                entry = slot[0]
                if entry is None:
                    continue  # replaced by a newer update further back
                key = entry.coalesce_key
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
        return events_frame(run, self.format)

    def encode(self, obj: Mapping[str, Any]) -> str | bytes:
        if self.format is WireFormat.MSGPACK:
            packed: bytes = msgpack.packb(obj)
            return packed
        text: str = json.dumps(obj, separators=(",", ":"))
        return text

    def _push_control(self, obj: Mapping[str, Any], now: float) -> bool:
        return self._push_frame(_Control(self.encode(obj)), now)

    def _push_frame(self, item: _Control, now: float) -> bool:
        if self.close_code is not None:
            return False
        self._outbox.append(item)
        if not self._depth:
            self._pending_since = now
        self._depth += 1
        self._bytes += item.size
        return self._check_bound()

    def _push(self, entry: FeedEntry, now: float) -> bool:
        if self.close_code is not None:
            return False
        if not self._depth:
            self._pending_since = now
        key = entry.coalesce_key
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
