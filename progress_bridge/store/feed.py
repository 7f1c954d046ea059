"""The live feed's reader: the only code that reads the feed shards (DESIGN.md option (a)).

Every append also writes its event to one of ``feed_shards`` feed streams; a bridge process
tails all of them with one ``XREAD BLOCK`` and routes what it reads to its connections. The
reader starts from each shard's newest id at start-up and resumes from the last id it saw after
a Redis hiccup (never from ``$`` again, so nothing written during the hiccup is skipped —
unless the feed was trimmed past it meanwhile; subscribers then still recover by replay on their
next subscribe).

Ceiling of this design: every bridge reads and parses every event of every job, whether or not
its clients watch it (figures in ``docs/benchmarks.md``); past that point, per-job routing
(option (b)) reads only watched jobs.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..events.records import StoredEntry
from .clients import aclose_client
from .errors import translated_async
from .keys import KeySpace

__all__ = ["FeedReader"]

log = logging.getLogger("progress_bridge.store.feed")


class FeedReader:
    """Tails every feed shard from where it last read.

    ``client`` must be dedicated to the reader, with a socket timeout longer than ``block_ms``
    (the read blocks that long).
    """

    def __init__(self, client: aioredis.Redis, keys: KeySpace, *, count: int, block_ms: int):
        self.client = client
        self.keys = keys
        self.count = count
        self.block_ms = block_ms
        #: Feed key → the last id read (empty until the first read).
        self.positions: dict[str, str] = {}
        #: True when the last read filled a whole batch on some shard: more is waiting.
        self.backlogged = True
        #: Feed rows the last read returned (malformed ones included).
        self.rows = 0

    async def _start_positions(self) -> dict[str, str]:
        """Each feed's newest id now (``0-0`` for a feed that does not exist yet)."""
        pipe = self.client.pipeline(transaction=False)
        feeds = self.keys.all_feeds()
        for feed in feeds:
            pipe.xinfo_stream(feed)
        out: dict[str, str] = {}
        for feed, info in zip(feeds, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(info, ResponseError):
                out[feed] = "0-0"
            elif isinstance(info, Exception):
                raise info
            else:
                out[feed] = str(info["last-generated-id"])
        return out

    @translated_async
    async def prime(self) -> None:
        """Take each shard's newest id as the starting point, once.

        Whoever reads a job's history must do so after this: an entry appended before it is in
        that history, one appended after it is read live — nothing falls between the two.

        Raises:
            StreamUnavailable: Redis is unreachable; call again.
        """
        if not self.positions:
            self.positions = await self._start_positions()
            log.info("feed reader started", extra={"shards": len(self.positions)})

    @translated_async
    async def read(self) -> list[StoredEntry]:
        """The next entries of every shard (waiting up to ``block_ms`` for the first).

        Raises:
            StreamUnavailable: Redis is unreachable; call again to resume.
        """
        await self.prime()
        reply: Any = await self.client.xread(
            self.positions,  # type: ignore[arg-type]
            count=self.count,
            block=self.block_ms,
        )
        rows = 0
        backlogged = False
        out: list[StoredEntry] = []
        for feed, entries in reply or ():
            for entry_id, fields in entries:
                self.positions[feed] = entry_id
                try:
                    out.append(StoredEntry(fields["j"], fields["i"], fields["p"], fields["e"]))
                except KeyError as exc:
                    log.warning("skipping malformed feed entry %s: missing %s", entry_id, exc)
            rows += len(entries)
            backlogged = backlogged or len(entries) >= self.count
        self.rows = rows
        self.backlogged = backlogged
        return out

    async def aclose(self) -> None:
        await aclose_client(self.client)
