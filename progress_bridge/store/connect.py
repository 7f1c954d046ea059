"""How each part of the system connects to Redis: one place to choose clients, pools and
timeouts (and, later, the deployment mode)."""

from __future__ import annotations

import redis.asyncio as aioredis

from ..config import Settings
from .aio import AsyncEventStore
from .feed import FeedReader
from .keys import KeySpace

__all__ = ["bridge_store", "feed_reader"]


def bridge_store(url: str, settings: Settings) -> AsyncEventStore:
    """The bridge's store: a blocking pool, so a burst of subscribes (a reconnect storm) queues
    for a connection (up to ``bridge_redis_pool_timeout_s``) instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=settings.bridge_redis_pool_size,
        timeout=settings.bridge_redis_pool_timeout_s,
    )
    return AsyncEventStore(aioredis.Redis.from_pool(pool), settings)


def feed_reader(url: str, settings: Settings) -> FeedReader:
    """The feed reader on a connection of its own, whose socket waits longer than the read
    blocks (redis-py's default 5 s timeout would break a longer ``XREAD BLOCK``)."""
    client = aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=settings.bridge_read_block_ms / 1000 + 10
    )
    return FeedReader(
        client,
        KeySpace(settings.key_prefix, settings.feed_shards),
        count=settings.bridge_read_count,
        block_ms=settings.bridge_read_block_ms,
    )
