"""The live feed's reader on a Redis/Valkey Cluster: one blocking ``XREAD`` per feed shard.

A cluster refuses a command whose keys hash to different slots — even on one node — and each
feed shard has a slot of its own (its hash tag is the shard's, shared with the jobs it carries,
so that an append stays atomic). So this reader keeps one blocking ``XREAD`` running per shard,
on the cluster client's connection pool of the node that serves it, all feeding one queue. It
keeps the standalone reader's contract (:class:`~progress_bridge.store.feed.FeedReader`): start
from each shard's newest id once (:meth:`prime`), resume from the last id read after any error.

Slot moves and failovers: redis-py's cluster client follows ``MOVED``/``ASK`` and refreshes the
topology; a shard whose read fails (its node gone, the cluster reconfiguring) is read again from
the same position once the client finds the shard's node — no entry lost or read twice across a
resharding or a failover. The cost: ``feed_shards`` connections per bridge, one per shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from ..events.records import StoredEntry
from .errors import REDIS_ERRORS, translate, translated_async
from .keys import KeySpace

__all__ = ["ClusterFeedReader"]

log = logging.getLogger("progress_bridge.store.feed")


class _ShardFailed(Exception):
    def __init__(self, feed: str, cause: BaseException) -> None:
        super().__init__(f"{feed}: {cause!r}")
        self.feed = feed
        self.cause = cause


class ClusterFeedReader:
    """Tails every feed shard of a cluster, one blocking read per shard.

    ``cluster``'s socket timeout must exceed ``block_ms`` (a read blocks that long).
    """

    def __init__(self, cluster: RedisCluster, keys: KeySpace, *, count: int, block_ms: int):
        self.cluster = cluster
        self.keys = keys
        self.count = count
        self.block_ms = block_ms
        self.positions: dict[str, str] = {}
        self.backlogged = True
        self.rows = 0
        self._queue: asyncio.Queue[tuple[list[StoredEntry], int, bool] | _ShardFailed] = (
            asyncio.Queue()
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @translated_async
    async def prime(self) -> None:
        """Take each shard's newest id as the starting point, once (see ``FeedReader.prime``)."""
        if self.positions:
            return
        positions: dict[str, str] = {}
        for feed in self.keys.all_feeds():
            try:
                info: Any = await self.cluster.xinfo_stream(feed)
            except ResponseError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                positions[feed] = "0-0"
            else:
                positions[feed] = str(info["last-generated-id"])
        self.positions = positions
        log.info("cluster feed reader started", extra={"shards": len(positions)})

    async def _read_shard(self, feed: str) -> None:
        while True:
            try:
                reply: Any = await self.cluster.xread(
                    {feed: self.positions[feed]}, count=self.count, block=self.block_ms
                )
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                await self._queue.put(_ShardFailed(feed, exc))
                return
            entries: list[StoredEntry] = []
            rows = 0
            for _, rows_of_feed in reply or ():
                for entry_id, fields in rows_of_feed:
                    self.positions[feed] = entry_id
                    try:
                        entries.append(
                            StoredEntry(fields["j"], fields["i"], fields["p"], fields["e"])
                        )
                    except KeyError as exc:
                        log.warning("skipping malformed feed entry %s: missing %s", entry_id, exc)
                rows += len(rows_of_feed)
            if rows:
                await self._queue.put((entries, rows, rows >= self.count))

    def _start(self) -> None:
        """A reader task for every shard that has none (a failed one is started again)."""
        for feed in self.positions:
            task = self._tasks.get(feed)
            if task is None or task.done():
                self._tasks[feed] = asyncio.create_task(
                    self._read_shard(feed), name=f"pb-feed-{feed}"
                )

    async def read(self) -> list[StoredEntry]:
        """The next entries of any shard (waiting up to ``block_ms``).

        Raises:
            StreamUnavailable: a shard could not be read (its node unreachable, the cluster
                reconfiguring); call again to resume it from where it stopped.
        """
        await self.prime()
        self._start()
        try:
            item = await asyncio.wait_for(self._queue.get(), self.block_ms / 1000)
        except TimeoutError:
            self.rows, self.backlogged = 0, False
            return []
        if isinstance(item, _ShardFailed):
            self.rows = 0
            raise translate(item.cause) from item.cause
        entries, self.rows, self.backlogged = item
        return entries

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.cluster.aclose()
