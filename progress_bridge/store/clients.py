"""Redis clients for the deployment mode (``redis_mode``): one place that knows how to reach a
standalone server, a cluster or the master behind sentinels."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from ..config import Settings
from ..exceptions import ConfigError

__all__ = ["aclose_client", "async_client", "close_client", "sync_client"]


def _sentinel_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 26379


def _master_name(settings: Settings) -> str:
    if not settings.redis_sentinel_master:
        raise ConfigError(
            "PROGRESS_REDIS_MODE=sentinel needs PROGRESS_REDIS_SENTINEL_MASTER, the name the "
            "sentinels monitor the master under"
        )
    return settings.redis_sentinel_master


def sync_client(url: str, settings: Settings, **options: Any) -> Any:
    """A synchronous client for the deployment mode (``options`` go to redis-py)."""
    if settings.redis_mode == "cluster":
        return redis.RedisCluster.from_url(url, decode_responses=True, **options)
    if settings.redis_mode == "sentinel":
        sentinel = Sentinel([_sentinel_address(url)], socket_timeout=options.get("socket_timeout"))
        return sentinel.master_for(_master_name(settings), decode_responses=True, **options)
    return redis.Redis.from_url(url, decode_responses=True, **options)


def async_client(url: str, settings: Settings, **options: Any) -> Any:
    """An asyncio client for the deployment mode (``options`` go to redis-py)."""
    if settings.redis_mode == "cluster":
        return AsyncRedisCluster.from_url(url, decode_responses=True, **options)
    if settings.redis_mode == "sentinel":
        sentinel = AsyncSentinel(
            [_sentinel_address(url)], socket_timeout=options.get("socket_timeout")
        )
        return sentinel.master_for(_master_name(settings), decode_responses=True, **options)
    return aioredis.Redis.from_url(url, decode_responses=True, **options)


def _sentinels(client: Any) -> list[Any]:
    """The clients a sentinel-backed client asks for its master (closed with it)."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    return list(getattr(manager, "sentinels", ()))


async def aclose_client(client: Any) -> None:
    """Close an asyncio client and, behind sentinels, its connections to the sentinels."""
    await client.aclose()
    for sentinel in _sentinels(client):
        await sentinel.aclose()


def close_client(client: Any) -> None:
    """Close a client and, behind sentinels, its connections to the sentinels."""
    client.close()
    for sentinel in _sentinels(client):
        sentinel.close()
