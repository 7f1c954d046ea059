"""The batch append of the synchronous store: many events per script call, pipelined.

:meth:`BatchAppends.append_many` is the outage buffer's drain and a publisher's bulk write. On one
server it packs each ``append_batch.lua`` call by hand (redis-py's generic packer costs ~10 µs
per event) and keeps one call in flight while it builds the next; on a cluster it sends one call
per batch through the cluster client. Either way a job's events keep their order, and each
event's outcome is returned, not raised. A part of :class:`~.sync.EventStore`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
from redis.commands.core import Script

from ..config import Settings
from ..events.records import positioned
from ..events.schema import ProgressEvent
from ..exceptions import DuplicateTerminal
from ._scripts import APPEND_BATCH, EVAL_PREFIX, append_call, bulk, memo_bulks
from .errors import REDIS_ERRORS, translate
from .keys import KeySpace

__all__ = ["BatchAppends"]

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


class BatchAppends:
    """:meth:`append_many`, mixed into :class:`~.sync.EventStore` (which sets these)."""

    client: redis.Redis
    settings: Settings
    keys: KeySpace
    _append_batch: Script

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
