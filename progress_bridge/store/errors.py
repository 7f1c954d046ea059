"""Redis errors, translated at the store's edge, so no other layer needs to know Redis.

Every store method that talks to Redis raises
:class:`~progress_bridge.exceptions.StreamUnavailable` when the server cannot be reached (the call
may work later) and :class:`~progress_bridge.exceptions.StoreRejected` when it answers with an
error reply (it will not), each carrying Redis's own message; callers decide what follows (the
bridge answers ``unavailable``, the producer buffers or drops).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import redis

from ..exceptions import StoreRejected, StreamUnavailable

__all__ = [
    "REDIS_ERRORS",
    "TRANSIENT_REPLIES",
    "translate",
    "translated",
    "translated_async",
    "translated_sync",
]

P = ParamSpec("P")
R = TypeVar("R")

#: What a Redis call raises when the server is unreachable or refuses it.
REDIS_ERRORS = (redis.RedisError, OSError)


#: Error replies that mean "not now" — a failover or a resharding under way, a server loading its
#: data or demoted to a replica — rather than "never": the call may succeed later.
TRANSIENT_REPLIES = (
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MOVED",
    "ASK",
    "LOADING",
    "MASTERDOWN",
    "READONLY",
    "NOREPLICAS",
)


def translate(exc: BaseException, job_id: str | None = None) -> StreamUnavailable | StoreRejected:
    """The store's exception for a Redis (or socket) exception."""
    if isinstance(exc, redis.ResponseError) and not _transient(exc):
        return StoreRejected(f"the store refused the call: {exc}", job_id=job_id)
    return StreamUnavailable(f"store unreachable: {exc}", job_id=job_id)


def _transient(exc: redis.ResponseError) -> bool:
    if isinstance(
        exc,
        (
            redis.exceptions.ClusterDownError,
            redis.exceptions.TryAgainError,
            redis.exceptions.MovedError,
            redis.exceptions.AskError,
            redis.exceptions.BusyLoadingError,
            redis.exceptions.ReadOnlyError,
        ),
    ):
        return True
    return str(exc).split(" ", 1)[0].upper() in TRANSIENT_REPLIES


@contextmanager
def translated(job_id: str | None = None) -> Iterator[None]:
    """Raise the store's exception for a Redis error inside the block."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise translate(exc, job_id) from exc


def translated_async(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """:func:`translated` around a coroutine method."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc

    return wrapper


def translated_sync(fn: Callable[P, R]) -> Callable[P, R]:
    """:func:`translated` around a method."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc

    return wrapper
