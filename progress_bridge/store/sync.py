"""The event store for synchronous code (Celery workers and publishers, tools): atomic appends to
Redis Streams, snapshots and replay.

One append is one round trip (a Lua script, ``lua/append.lua``) that writes the job's history
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

from collections.abc import Iterable
from typing import Any, Literal, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import Settings
from ..events.records import Replay, StoredEntry, positioned
from ..events.schema import ProgressEvent
from ..events.snapshot import ATTEMPT_FIELD, TERMINAL_FIELD, JobSnapshot
from ..exceptions import DuplicateTerminal
from ._scripts import (
    APPEND_BATCH,
    APPEND_BATCH_LUA,
    APPEND_LUA,
    CLAIM_FAILED,
    EVAL_PREFIX,
    EXPIRED_LUA,
    LEASE_LUA,
    REPLAY_LUA,
    Lease,
    append_call,
    appended,
    bulk,
    decide_replay,
    memo_bulks,
    validate_position,
)
from .clients import close_client, sync_client
from .errors import REDIS_ERRORS, translate, translated_sync
from .keys import KeySpace

__all__ = ["EventStore", "Lease", "LeaseStatus"]

#: What :meth:`EventStore.renew_lease` and :meth:`EventStore.release_lease` report (lease.lua).
LeaseStatus = Literal["ok", "lost", "moved", "behind", "ended", "taken"]

try:  # redis-py >= 7.1 names the library through driver_info; None sends no CLIENT SETINFO
    from redis.driver_info import DriverInfo

    _NO_CLIENT_SETINFO: dict[str, Any] = {"driver_info": DriverInfo(name=None, lib_version=None)}
except ImportError:  # pragma: no cover - older redis-py
    _NO_CLIENT_SETINFO = {"lib_name": None, "lib_version": None}

_KEYS_PER_EVENT = 4  # append_batch.lua's KEYS per event
_ARGS_PER_EVENT = 13  # append_batch.lua's ARGV per event
_EMPTY = bulk("")


def _batch_results(
    events: list[ProgressEvent], chunk: list[int], reply: str, out: list[ProgressEvent | Exception]
) -> None:
    """Fill in the results of one batch call's events from its reply (a line per event)."""
    for i, line in zip(chunk, reply.split("\n"), strict=True):
        if line.startswith("! "):
            out[i] = translate(redis.ResponseError(line[2:]), events[i].job_id)
            continue
        event_id, epoch, extra = line.split(" ", 2)
        if not event_id:
            out[i] = DuplicateTerminal(events[i].job_id, extra, events[i].type)
        else:  # no increments in a batch, so the payload is never rewritten
            out[i] = positioned(events[i], event_id, epoch)


class EventStore:
    """Synchronous store, for Celery workers and publishers (one instance per process)."""

    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or Settings()
        self.keys = KeySpace(self.settings.key_prefix, self.settings.feed_shards)
        self._append = client.register_script(APPEND_LUA)
        self._replay = client.register_script(REPLAY_LUA)
        self._lease = client.register_script(LEASE_LUA)
        self._expired = client.register_script(EXPIRED_LUA)
        self._append_batch = client.register_script(APPEND_BATCH_LUA)

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None, **kwargs: Any) -> EventStore:
        """A store on its own client for the settings' deployment mode (``kwargs`` go to
        redis-py)."""
        settings = settings or Settings()
        return cls(sync_client(url, settings, **kwargs), settings)

    @classmethod
    def for_producer(cls, url: str, settings: Settings) -> EventStore:
        """A store for a task's producer: one call waits at most
        ``producer_connect_timeout_s`` to connect plus ``producer_socket_timeout_s`` for each
        read or write, with no retry inside a call (the outage buffer retries, off the task's
        path) and no extra round trips when connecting (no ``CLIENT SETINFO``), so a refused,
        unreachable or stalled Redis costs a call no more than that."""
        return cls.from_url(
            url,
            settings,
            socket_connect_timeout=settings.producer_connect_timeout_s,
            socket_timeout=settings.producer_socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            **_NO_CLIENT_SETINFO,
        )

    @translated_sync
    def append(
        self,
        event: ProgressEvent,
        *,
        increments: dict[str, int] | None = None,
        lease: Lease | None = None,
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
            StreamUnavailable: Redis is unreachable (ProgressTask catches and buffers this).
            StoreRejected: Redis refused the call (an error reply).

        ``lease`` (``(ms, value)``, with a ``processing_started``) registers the job as running
        until its holder stops renewing it (:meth:`renew_lease`); a terminal event or a
        ``processing_retrying`` removes it.
        """
        keys, argv = append_call(self.keys, self.settings, event, increments, lease=lease)
        return appended(event, self._append(keys=keys, args=argv))

    @translated_sync
    def append_claimed(self, event: ProgressEvent, claim: str) -> ProgressEvent | None:
        """Append ``event`` only if the job's lease still holds ``claim`` and has expired.

        The reaper's write: of many reapers that saw the same expired lease, exactly one
        appends (and the lease goes with a terminal or retrying event); the others get None.

        Raises:
            DuplicateTerminal: the job had already ended (its lease is removed).
        """
        keys, argv = append_call(self.keys, self.settings, event, None, claim=claim)
        reply = self._append(keys=keys, args=argv)
        if not reply[0] and reply[2] == CLAIM_FAILED:
            return None
        return appended(event, reply)

    @translated_sync
    def renew_leases(
        self, leases: list[tuple[str, str, str | None, str | None]], lease_ms: int
    ) -> list[LeaseStatus]:
        """Renew the leases ``(job_id, holder token, epoch last written, greatest id written in
        it)`` in one round trip.

        See ``lease.lua`` for what each status means to the holder.
        """
        if not leases:
            return []
        pipe = self.client.pipeline(transaction=False)
        for job_id, token, epoch, last_id in leases:
            running, info = self.keys.running_of(job_id)
            self._lease(
                keys=[running, info, self.keys.snapshot(job_id)],
                args=[job_id, token, "renew", lease_ms, epoch or "", last_id or ""],
                client=pipe,
            )
        return cast(list[LeaseStatus], pipe.execute())

    @translated_sync
    def release_lease(self, job_id: str, token: str) -> LeaseStatus:
        """Give up the job's lease if ``token`` still holds it ("ok"), else "taken"."""
        running, info = self.keys.running_of(job_id)
        keys = [running, info, self.keys.snapshot(job_id)]
        args: list[str | int] = [job_id, token, "release", 0, "", ""]
        return cast(LeaseStatus, self._lease(keys=keys, args=args))

    @translated_sync
    def expired_leases(self, shard: int, limit: int = 100) -> list[tuple[str, str]]:
        """``(job_id, lease value)`` of the shard's running jobs whose lease has expired."""
        flat = cast(
            list[str],
            self._expired(
                keys=[self.keys.running(shard), self.keys.running_info(shard)], args=[limit]
            ),
        )
        return list(zip(flat[::2], flat[1::2], strict=True))

    @translated_sync
    def job_state(self, job_id: str) -> tuple[int, str | None]:
        """The attempt recorded in the job's snapshot (0 if none) and its terminal event type
        (None while it runs): what a new attempt checks before it starts.

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        raw_attempt, terminal = self.client.hmget(
            self.keys.snapshot(job_id), [ATTEMPT_FIELD, TERMINAL_FIELD]
        )
        try:
            attempt = int(cast(str, raw_attempt)) if raw_attempt else 0
        except (TypeError, ValueError):
            attempt = 0
        return attempt, (str(terminal) if terminal else None)

    def append_many(self, events: Iterable[ProgressEvent]) -> list[ProgressEvent | Exception]:
        """Append in order, many events per call; per-event errors are returned, not raised.

        Events are grouped by shard (a job's events stay in order: a job has one shard) and sent
        as batch calls of :data:`APPEND_BATCH` events, each written as soon as it is built and
        its reply read once the next call is written, so the server runs one call while the
        client builds the next and finishes the previous one's events.

        Per event: the appended event, :class:`DuplicateTerminal`, or :class:`StoreRejected`.

        Raises:
            StreamUnavailable: the connection failed; events before the failure may have been
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

        if isinstance(self.client, redis.RedisCluster):
            self._append_many_cluster(events, by_shard, out)
            return out

        def take(conn: Any) -> None:
            """Read the oldest unread chunk's reply and fill in its events' results."""
            chunk = unread.pop(0)
            try:
                reply = conn.read_response()
            except redis.ResponseError as exc:
                for i in chunk:
                    out[i] = translate(exc, events[i].job_id)
                return
            _batch_results(events, chunk, reply, out)

        pool = self.client.connection_pool
        try:
            conn: Any = pool.get_connection()  # redis-py types send_command loosely
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        try:
            for shard, indexes in by_shard.items():
                for start in range(0, len(indexes), APPEND_BATCH):
                    chunk = indexes[start : start + APPEND_BATCH]
                    keys: list[bytes] = []
                    argv: list[bytes] = []
                    for i in chunk:
                        k, a = append_call(self.keys, self.settings, events[i], None, cache)
                        # A job's keys, and its arguments but the payload and snapshot fields,
                        # repeat across its events: each distinct run is packed once.
                        key_run, arg_run = tuple(k[:4]), tuple(a[1:11])
                        keys.append(memo.get(key_run) or memo_bulks(memo, key_run))
                        argv.append(bulk(a[0]))  # the payload: unique, not memoised
                        argv.append(memo.get(arg_run) or memo_bulks(memo, arg_run))
                        argv.append(bulk(a[11]))  # the snapshot fields: unique
                        argv.append(bulk(a[12]) if a[12] else _EMPTY)  # the stream budget
                    # One RESP command, packed here: redis-py's generic packer costs ~10 µs per
                    # event, most of it re-encoding keys and constants this batch repeats. The
                    # shard's running keys lead, once per batch (see append_batch.lua).
                    n = len(chunk)
                    size = 3 + 2 + _KEYS_PER_EVENT * n + _ARGS_PER_EVENT * n
                    head = b"*%d\r\n%b%b%b%b" % (
                        size,
                        EVAL_PREFIX,
                        bulk(2 + _KEYS_PER_EVENT * n),
                        bulk(self.keys.running(shard)),
                        bulk(self.keys.running_info(shard)),
                    )
                    conn.send_packed_command([b"".join((head, *keys, *argv))], check_health=False)
                    unread.append(chunk)
                    if len(unread) > 1:
                        # The previous call's reply, most likely ready: reading it here lets
                        # the server run this call while its events are finished below.
                        take(conn)
            while unread:
                take(conn)
        except REDIS_ERRORS as exc:
            conn.disconnect()
            raise translate(exc) from exc
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        return out

    def _append_many_cluster(
        self,
        events: list[ProgressEvent],
        by_shard: dict[int, list[int]],
        out: list[ProgressEvent | Exception],
    ) -> None:
        """:meth:`append_many` on a cluster: one script call per batch, through the cluster
        client, which sends it to the node serving the shard's slot and follows ``MOVED`` /
        ``ASK`` (the shards live on different nodes, so one connection cannot carry them)."""
        cache: dict[tuple[str, str | None], tuple[list[str], str]] = {}
        for shard, indexes in by_shard.items():
            for start in range(0, len(indexes), APPEND_BATCH):
                chunk = indexes[start : start + APPEND_BATCH]
                keys = [self.keys.running(shard), self.keys.running_info(shard)]
                argv: list[str | int] = []
                for i in chunk:
                    k, a = append_call(self.keys, self.settings, events[i], None, cache)
                    keys += k[:4]
                    argv += [*a[:12], a[12] or ""]
                try:
                    reply = self._append_batch(keys=keys, args=argv)
                except redis.ResponseError as exc:
                    for i in chunk:
                        out[i] = translate(exc, events[i].job_id)
                    continue
                except REDIS_ERRORS as exc:
                    raise translate(exc) from exc
                _batch_results(events, chunk, reply, out)

    @translated_sync
    def snapshot(self, job_id: str) -> JobSnapshot | None:
        raw = cast(dict[str, str], self.client.hgetall(self.keys.snapshot(job_id)))
        return JobSnapshot.from_hash(job_id, raw) if raw.get("epoch") else None

    @translated_sync
    def replay(self, job_id: str, epoch: str | None = None, last_id: str | None = None) -> Replay:
        """Events after ``(epoch, last_id)``, or an explicit "not recovered" with the snapshot.

        ``last_id=None`` asks for the whole kept history.
        """
        validate_position(job_id, epoch, last_id)
        raw = self._replay(
            keys=[self.keys.stream(job_id), self.keys.snapshot(job_id)], args=[last_id or "-"]
        )
        answer, needs_snapshot = decide_replay(job_id, epoch, last_id, raw)
        if needs_snapshot:
            snap = self.snapshot(job_id)
            answer = Replay(job_id, False, answer.reason, answer.epoch, answer.entries, snap)
        return answer

    @translated_sync
    def history(self, job_id: str) -> list[ProgressEvent]:
        """Every kept event of a job, parsed (a convenience for tools and tests)."""
        return [entry.event() for entry in self.replay(job_id).entries]

    @translated_sync
    def jobs_of(self, owner: str, limit: int = 100) -> list[str]:
        """The owner's most recent job ids, newest first."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrevrange(self.keys.owner_index(owner, shard), 0, limit - 1, withscores=True)
        rows = [row for shard_rows in pipe.execute() for row in shard_rows]
        return [job for job, _ in sorted(rows, key=lambda r: -r[1])[:limit]]

    @translated_sync
    def attempt_of(self, job_id: str) -> int:
        """The attempt number recorded in the job's snapshot (0 if none).

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        raw = self.client.hget(self.keys.snapshot(job_id), ATTEMPT_FIELD)
        try:
            return int(cast(str, raw)) if raw else 0
        except (TypeError, ValueError):
            return 0

    @translated_sync
    def terminal_of(self, job_id: str) -> str | None:
        """The job's terminal event type once it has ended (the cancel check), else None.

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        value = self.client.hget(self.keys.snapshot(job_id), TERMINAL_FIELD)
        return str(value) if value else None

    @translated_sync
    def exists(self, job_id: str) -> bool:
        """Whether the job's history is still kept."""
        return bool(self.client.exists(self.keys.stream(job_id)))

    @translated_sync
    def follow(
        self, job_id: str, epoch: str, after: str, *, block_ms: int, count: int = 500
    ) -> list[StoredEntry]:
        """Entries of the job after ``after``, waiting up to ``block_ms`` for the first one.

        The client's socket timeout must exceed ``block_ms`` (redis-py's default is 5 s).
        """
        rows = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            self.client.xread({self.keys.stream(job_id): after}, block=block_ms, count=count),
        )
        if not rows:
            return []
        return [
            StoredEntry(job_id, entry_id, epoch, fields["e"]) for entry_id, fields in rows[0][1]
        ]

    @translated_sync
    def ping(self) -> None:
        """Raise :class:`~progress_bridge.exceptions.StreamUnavailable` unless Redis answers."""
        self.client.ping()

    def close(self) -> None:
        close_client(self.client)
