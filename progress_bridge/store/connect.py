"""How the bridge connects to Redis: its store's pool and its feed reader, for the deployment
mode (``redis_mode``: ``standalone``, ``cluster`` or ``sentinel``; clients in :mod:`.clients`).

- **standalone**: ``REDIS_URL`` names the server.
- **cluster**: ``REDIS_URL`` names any node; redis-py's cluster client follows ``MOVED``/``ASK``
  and topology changes; the feed is read per shard (:class:`~.feed_cluster.ClusterFeedReader`).
- **sentinel**: ``REDIS_URL`` names a sentinel, ``redis_sentinel_master`` the master's name; the
  clients ask the sentinels for the current master on every (re)connection.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from ..config import Settings
from .aio import AsyncEventStore
from .clients import async_client
from .feed import FeedReader
from .feed_cluster import ClusterFeedReader
from .keys import KeySpace
from .notify import JobNotifications

__all__ = ["bridge_store", "feed_reader"]


def bridge_store(url: str, settings: Settings) -> AsyncEventStore:
    """The bridge's store. Standalone: a blocking pool, so a burst of subscribes (a reconnect
    storm) queues for a connection (up to ``bridge_redis_pool_timeout_s``) instead of failing."""
    if settings.redis_mode == "standalone":
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=settings.bridge_redis_pool_size,
            timeout=settings.bridge_redis_pool_timeout_s,
        )
        return AsyncEventStore(aioredis.Redis.from_pool(pool), settings)
    client = async_client(url, settings, max_connections=settings.bridge_redis_pool_size)
    return AsyncEventStore(client, settings)


def feed_reader(url: str, settings: Settings) -> FeedReader | ClusterFeedReader | JobNotifications:
    """The feed reader on connections of its own, whose sockets wait longer than a read blocks
    (redis-py's default 5 s timeout would break a longer ``XREAD BLOCK``); with ``feed_mode``
    "notify", the process's sharded pub/sub subscriptions instead."""
    keys = KeySpace(settings.key_prefix, settings.feed_shards)
    count, block_ms = settings.bridge_read_count, settings.bridge_read_block_ms
    if settings.feed_mode == "notify":
        client = async_client(url, settings, socket_timeout=block_ms / 1000 + 10)
        # A cluster's reader splits one wait over its nodes: wait in short slices there, so a
        # message on one node does not wait for the others' share.
        poll_s = 0.005 if settings.redis_mode == "cluster" else None
        return JobNotifications(
            client.pubsub(), keys, block_ms=block_ms, poll_s=poll_s, client=client
        )
    if settings.redis_mode == "cluster":
        cluster = AsyncRedisCluster.from_url(
            url, decode_responses=True, socket_timeout=block_ms / 1000 + 10
        )
        return ClusterFeedReader(cluster, keys, count=count, block_ms=block_ms)
    client = async_client(url, settings, socket_timeout=block_ms / 1000 + 10)
    return FeedReader(client, keys, count=count, block_ms=block_ms)
