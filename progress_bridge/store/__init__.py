"""The only code that talks to Redis: keys, Lua scripts, appends, replay, snapshots, the owner
index, the cancel flag, and the live feed's reader.

- :class:`EventStore` (sync; Celery workers, tools) and :class:`AsyncEventStore` (asyncio; the
  bridge, the web app) keep one contract: an atomic append per event (history, snapshot, feed
  shard and owner index in one script call), replay after a position, snapshots.
- :class:`FeedReader` tails the feed shards for a bridge process.
- :class:`KeySpace` names every key; :class:`EmbeddedValkey` runs a private server for
  development and tests.
"""

from .aio import AsyncEventStore, JobMeta
from .connect import bridge_store, feed_reader
from .embedded import EmbeddedValkey, free_port, redis_url_or_embedded
from .feed import FeedReader
from .keys import KeySpace
from .sync import EventStore

__all__ = [
    "AsyncEventStore",
    "EmbeddedValkey",
    "EventStore",
    "FeedReader",
    "JobMeta",
    "KeySpace",
    "bridge_store",
    "feed_reader",
    "free_port",
    "redis_url_or_embedded",
]
