"""The event store: atomic appends to Redis Streams, snapshots and replay, sync and asyncio.

One append is one round trip (a Lua script, ``append.lua``) that writes the job's history
stream, its snapshot hash, its live feed shard and its owner's index together, so a reader never
sees one without the others. An event's id is its entry id in the job's stream, so ids strictly
increase per job; the job's ``epoch`` changes if the stream is lost and recreated.

Replay contract (also in ``docs/protocol.md``): :meth:`EventStore.replay` returns every event
after ``last_id`` when the epoch matches and nothing after ``last_id`` was trimmed
(``recovered=True``); otherwise ``recovered=False`` with the reason and the job's snapshot. It
never returns a partial history silently.

Clients must be created with ``decode_responses=True``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal, cast

import redis
import redis.asyncio as aioredis

from .config import Settings
from .events import TERMINAL_TYPES, ProgressEvent, parse_event
from .exceptions import DuplicateTerminal, InvalidEvent
from .keys import KeySpace, is_after, parse_stream_id
from .snapshot import JobSnapshot, packed_snapshot_fields

__all__ = [
    "AsyncEventStore",
    "EventStore",
    "Replay",
    "StoredEntry",
    "encode_payload",
    "with_position",
]

_APPEND_LUA = files(__package__).joinpath("append.lua").read_text()
_REPLAY_LUA = files(__package__).joinpath("replay.lua").read_text()
# append.lua defines append_one and ends by calling it once; the batch script is that text minus
# the call, then a loop calling append_one per event: one call appends many events of one shard
# with exactly append.lua's semantics (see append_batch.lua).
_APPEND_CALL = (
    "\nlocal id, epoch, rewritten = append_one(0, 0, nil)\nreturn {id, epoch, rewritten}\n"
)
if not _APPEND_LUA.endswith(_APPEND_CALL):
    raise RuntimeError("append.lua must end by calling append_one once (see append_batch.lua)")
_APPEND_BATCH_LUA = (
    _APPEND_LUA.removesuffix(_APPEND_CALL)
    + "\n"
    + files(__package__).joinpath("append_batch.lua").read_text()
)
#: Events per batch call: bounds how long one script holds the server (~15 µs per event).
APPEND_BATCH = 200


def _bulk(value: str | int) -> bytes:
    """One RESP bulk string."""
    data = str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def _memo_bulks(memo: dict[tuple[str | int, ...], bytes], values: tuple[str | int, ...]) -> bytes:
    packed = memo[values] = b"".join([_bulk(value) for value in values])
    return packed


_EVAL_PREFIX = _bulk("EVAL") + _bulk(_APPEND_BATCH_LUA)

ReplayReason = Literal["ok", "unknown_job", "epoch_changed", "trimmed", "ahead"]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One event as stored: its id, epoch and JSON payload (without id and epoch)."""

    job_id: str
    id: str
    epoch: str
    payload: str

    def wire_json(self) -> str:
        """The event as JSON with its position filled in (built once, without re-encoding)."""
        return with_position(self.payload, self.id, self.epoch)

    def event(self) -> ProgressEvent:
        return parse_event(self.wire_json())


@dataclass(frozen=True, slots=True)
class Replay:
    """Answer to "what happened after ``(epoch, last_id)``?".

    ``recovered`` is True only when ``entries`` is the complete history after ``last_id``.
    Otherwise ``reason`` says why and ``snapshot`` holds the job's latest state (``None`` only
    for an unknown job); ``entries`` then holds whatever history is still kept.
    """

    job_id: str
    recovered: bool
    reason: ReplayReason
    epoch: str | None
    entries: list[StoredEntry] = field(default_factory=list)
    snapshot: JobSnapshot | None = None


_POSITION = {"id", "epoch"}  # never mutated


def encode_payload(event: ProgressEvent) -> str:
    """The stored form of an event: JSON without ``id`` and ``epoch`` (they are positional)."""
    # model_dump_json(exclude=...) with its wrapper skipped: ~1 µs less on every append.
    return event.__pydantic_serializer__.to_json(event, exclude=_POSITION).decode()


_set = object.__setattr__


def _positioned(event: ProgressEvent, event_id: str, epoch: str) -> ProgressEvent:
    """``event.model_copy(update={"id": event_id, "epoch": epoch})`` at half its cost (events
    forbid extras and have no private attributes, so only the fields and their set change)."""
    cls = type(event)
    copied = cls.__new__(cls)
    fields = event.__dict__.copy()
    fields["id"] = event_id
    fields["epoch"] = epoch
    _set(copied, "__dict__", fields)
    _set(copied, "__pydantic_extra__", None)
    _set(copied, "__pydantic_fields_set__", event.__pydantic_fields_set__ | _POSITION)
    _set(copied, "__pydantic_private__", None)
    return copied


def with_position(payload: str, event_id: str, epoch: str) -> str:
    """Insert ``id`` and ``epoch`` into a stored payload by string splicing (ids are safe text)."""
    return '{"id":"' + event_id + '","epoch":"' + epoch + '",' + payload[1:]


def _append_call(
    keys: KeySpace,
    settings: Settings,
    event: ProgressEvent,
    increments: dict[str, int] | None,
    cache: dict[tuple[str, str | None], tuple[list[str], str]] | None = None,
) -> tuple[list[str], list[str | int]]:
    """Keys and arguments of append.lua for one event.

    ``cache`` (one batch's) reuses a job's keys and epoch candidate across its events: the
    candidate is only used by the event that creates the stream, so sharing it changes nothing.
    """
    job_id = event.job_id
    cached = cache.get((job_id, event.owner)) if cache is not None else None
    if cached is None:
        owner = event.owner
        owner_key = keys.owner_index_of(owner, job_id) if owner else keys.stream(job_id)
        cached = (
            [keys.stream(job_id), keys.snapshot(job_id), keys.feed_of(job_id), owner_key],
            secrets.token_urlsafe(9),
        )
        if cache is not None:
            cache[(job_id, owner)] = cached
    key_list, epoch_candidate = cached
    terminal = event.type in TERMINAL_TYPES
    if increments:  # read both counters back, so the event carries totals and a percent
        increments = {"zones_completed": 0, "zones_total": 0, **increments}
    argv: list[str | int] = [
        encode_payload(event),
        epoch_candidate,
        settings.stream_maxlen,
        settings.feed_maxlen,
        event.type,
        "1" if terminal else "0",
        settings.ttl_after_end_s,
        settings.idle_ttl_s,
        job_id,
        str(int(event.ts * 1000)) if event.owner else "",
        json.dumps(increments) if increments else "",
        packed_snapshot_fields(event),
    ]
    return key_list, argv


def _appended(event: ProgressEvent, result: Sequence[str]) -> ProgressEvent:
    event_id, epoch, extra = result
    if not event_id:
        raise DuplicateTerminal(event.job_id, existing=extra, refused=event.type)
    if extra:  # the script rewrote the payload (summed counters)
        return parse_event(with_position(extra, event_id, epoch))
    return _positioned(event, event_id, epoch)


def _replay(
    job_id: str,
    epoch: str | None,
    last_id: str | None,
    raw: Sequence[Any],
) -> tuple[Replay, bool]:
    """Decide recovery from the replay script's answer; the bool says "fetch the snapshot"."""
    if not raw:
        return Replay(job_id, recovered=False, reason="unknown_job", epoch=None), False
    current_epoch, last_generated, first_kept, removed, rows = raw
    entries = [StoredEntry(job_id, eid, current_epoch, fields[1]) for eid, fields in rows]
    reason: ReplayReason = "ok"
    if epoch is not None and epoch != current_epoch:
        reason = "epoch_changed"
    elif last_id is not None and is_after(last_id, last_generated):
        reason = "ahead"
    elif removed != 0 and (
        (last_id is None and removed > 0)
        or (last_id is not None and first_kept and is_after(first_kept, last_id))
    ):
        # Trimming removes the oldest entries: when the position is older than the first kept
        # entry, the entry right after it may be gone. (On Redis < 7, removed is -1: unknown.)
        reason = "trimmed"
    if reason == "ok":
        return Replay(job_id, True, reason, current_epoch, entries), False
    if reason in ("epoch_changed", "ahead"):
        entries = []  # positions from another epoch mean nothing here
    return Replay(job_id, False, reason, current_epoch, entries), True


def _validate_position(job_id: str, epoch: str | None, last_id: str | None) -> None:
    if last_id is not None:
        try:
            parse_stream_id(last_id)
        except ValueError as exc:
            raise InvalidEvent(str(exc), job_id=job_id) from None
    if last_id is not None and epoch is None:
        raise InvalidEvent("a last_id needs the epoch it belongs to", job_id=job_id)


class EventStore:
    """Synchronous store, for Celery workers and publishers (one instance per process)."""

    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or Settings()
        self.keys = KeySpace(self.settings.key_prefix, self.settings.feed_shards)
        self._append = client.register_script(_APPEND_LUA)
        self._replay = client.register_script(_REPLAY_LUA)

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None, **kwargs: Any) -> EventStore:
        return cls(redis.Redis.from_url(url, decode_responses=True, **kwargs), settings)

    def append(
        self, event: ProgressEvent, *, increments: dict[str, int] | None = None
    ) -> ProgressEvent:
        """Append one event atomically; return it with ``id`` and ``epoch`` set.

        Args:
            increments: counters to add to the snapshot (e.g. ``{"zones_completed": 1}``), for
                writers that share one job (canvas children). Their new totals replace the
                event's fields, except ``progress_bp`` (the job's progress in basis points, the
                sum of each child's share of its own percent), which stays in the snapshot only.
                ``percent`` follows: ``progress_bp / 100`` once the job has one, else
                ``zones_completed / zones_total``, capped at 99 (100 comes with the terminal
                event only). See ``append.lua``.

        Raises:
            DuplicateTerminal: the job already ended; nothing was written.
            redis.RedisError: Redis is unreachable (ProgressTask catches and buffers this).
        """
        keys, argv = _append_call(self.keys, self.settings, event, increments)
        return _appended(event, self._append(keys=keys, args=argv))

    def append_many(self, events: Iterable[ProgressEvent]) -> list[ProgressEvent | Exception]:
        """Append in order, many events per call; per-event errors are returned, not raised.

        Events are grouped by shard (a job's events stay in order: a job has one shard) and sent
        as batch calls of :data:`APPEND_BATCH` events, each written as soon as it is built and
        its reply read once the next call is written, so the server runs one call while the
        client builds the next and finishes the previous one's events.

        Raises:
            redis.ConnectionError: the connection failed; events before the failure may have been
                appended.
        """
        events = list(events)
        if not events:
            return []
        shard_of = self.keys.shard_of
        by_shard: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            by_shard.setdefault(shard_of(event.job_id), []).append(i)
        cache: dict[tuple[str, str | None], tuple[list[str], str]] = {}
        memo: dict[tuple[str | int, ...], bytes] = {}
        out: list[ProgressEvent | Exception] = [None] * len(events)  # type: ignore[list-item]
        unread: list[list[int]] = []  # chunks sent whose replies are not read yet, in order

        def take(conn: Any) -> None:
            """Read the oldest unread chunk's reply and fill in its events' results."""
            chunk = unread.pop(0)
            try:
                reply = conn.read_response()
            except redis.ResponseError as exc:
                for i in chunk:
                    out[i] = exc
                return
            for i, line in zip(chunk, reply.split("\n"), strict=True):
                if line.startswith("! "):
                    out[i] = redis.ResponseError(line[2:])
                    continue
                event_id, epoch, extra = line.split(" ", 2)
                if not event_id:
                    out[i] = DuplicateTerminal(events[i].job_id, extra, events[i].type)
                else:  # no increments in a batch, so the payload is never rewritten
                    out[i] = _positioned(events[i], event_id, epoch)

        pool = self.client.connection_pool
        conn: Any = pool.get_connection()  # redis-py types send_command loosely
        try:
            for indexes in by_shard.values():
                for start in range(0, len(indexes), APPEND_BATCH):
                    chunk = indexes[start : start + APPEND_BATCH]
                    keys: list[bytes] = []
                    argv: list[bytes] = []
                    for i in chunk:
                        k, a = _append_call(self.keys, self.settings, events[i], None, cache)
                        # A job's keys, and its arguments but the payload and snapshot fields,
                        # repeat across its events: each distinct run is packed once.
                        key_run, arg_run = tuple(k), tuple(a[1:11])
                        keys.append(memo.get(key_run) or _memo_bulks(memo, key_run))
                        argv.append(_bulk(a[0]))  # the payload: unique, not memoised
                        argv.append(memo.get(arg_run) or _memo_bulks(memo, arg_run))
                        argv.append(_bulk(a[11]))  # the snapshot fields: unique
                    # One RESP command, packed here: redis-py's generic packer costs ~10 µs per
                    # event, most of it re-encoding keys and constants this batch repeats.
                    size = 3 + 4 * len(chunk) + 12 * len(chunk)
                    head = b"*%d\r\n%b%b" % (size, _EVAL_PREFIX, _bulk(4 * len(chunk)))
                    conn.send_packed_command([b"".join((head, *keys, *argv))], check_health=False)
                    unread.append(chunk)
                    if len(unread) > 1:
                        # The previous call's reply, most likely ready: reading it here lets
                        # the server run this call while its events are finished below.
                        take(conn)
            while unread:
                take(conn)
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        return out

    def snapshot(self, job_id: str) -> JobSnapshot | None:
        raw = cast(dict[str, str], self.client.hgetall(self.keys.snapshot(job_id)))
        return JobSnapshot.from_hash(job_id, raw) if raw.get("epoch") else None

    def replay(self, job_id: str, epoch: str | None = None, last_id: str | None = None) -> Replay:
        """Events after ``(epoch, last_id)``, or an explicit "not recovered" with the snapshot.

        ``last_id=None`` asks for the whole kept history.
        """
        _validate_position(job_id, epoch, last_id)
        raw = self._replay(
            keys=[self.keys.stream(job_id), self.keys.snapshot(job_id)], args=[last_id or "-"]
        )
        answer, needs_snapshot = _replay(job_id, epoch, last_id, raw)
        if needs_snapshot:
            snap = self.snapshot(job_id)
            answer = Replay(job_id, False, answer.reason, answer.epoch, answer.entries, snap)
        return answer

    def history(self, job_id: str) -> list[ProgressEvent]:
        """Every kept event of a job, parsed (a convenience for tools and tests)."""
        return [entry.event() for entry in self.replay(job_id).entries]

    def jobs_of(self, owner: str, limit: int = 100) -> list[str]:
        """The owner's most recent job ids, newest first."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrevrange(self.keys.owner_index(owner, shard), 0, limit - 1, withscores=True)
        rows = [row for shard_rows in pipe.execute() for row in shard_rows]
        return [job for job, _ in sorted(rows, key=lambda r: -r[1])[:limit]]


class AsyncEventStore:
    """The same store for asyncio code (the bridge, the web app)."""

    def __init__(self, client: aioredis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or Settings()
        self.keys = KeySpace(self.settings.key_prefix, self.settings.feed_shards)
        self._append = client.register_script(_APPEND_LUA)
        self._replay = client.register_script(_REPLAY_LUA)

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None, **kwargs: Any) -> AsyncEventStore:
        return cls(aioredis.Redis.from_url(url, decode_responses=True, **kwargs), settings)

    async def append(
        self, event: ProgressEvent, *, increments: dict[str, int] | None = None
    ) -> ProgressEvent:
        """See :meth:`EventStore.append`."""
        keys, argv = _append_call(self.keys, self.settings, event, increments)
        return _appended(event, await self._append(keys=keys, args=argv))

    async def snapshot(self, job_id: str) -> JobSnapshot | None:
        raw = cast(dict[str, str], await self.client.hgetall(self.keys.snapshot(job_id)))
        return JobSnapshot.from_hash(job_id, raw) if raw.get("epoch") else None

    async def replay(
        self, job_id: str, epoch: str | None = None, last_id: str | None = None
    ) -> Replay:
        """See :meth:`EventStore.replay`."""
        _validate_position(job_id, epoch, last_id)
        raw = await self._replay(
            keys=[self.keys.stream(job_id), self.keys.snapshot(job_id)], args=[last_id or "-"]
        )
        answer, needs_snapshot = _replay(job_id, epoch, last_id, raw)
        if needs_snapshot:
            snap = await self.snapshot(job_id)
            answer = Replay(job_id, False, answer.reason, answer.epoch, answer.entries, snap)
        return answer

    async def jobs_of(self, owner: str, limit: int = 100) -> list[str]:
        """See :meth:`EventStore.jobs_of`."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrevrange(self.keys.owner_index(owner, shard), 0, limit - 1, withscores=True)
        rows = [row for shard_rows in await pipe.execute() for row in shard_rows]
        return [job for job, _ in sorted(rows, key=lambda r: -r[1])[:limit]]

    async def aclose(self) -> None:
        await self.client.aclose()
