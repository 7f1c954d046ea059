"""The event store for synchronous code (Celery workers and publishers, tools): atomic appends to
Redis Streams, snapshots and replay.

One append is one round trip (a Lua script, ``lua/append.lua``) that writes the job's history
stream, its snapshot hash, its live feed shard and its owner's index together, so a reader never
sees one without the others. An event's id is its entry id in the job's stream, so ids strictly
increase per job; the job's ``epoch`` changes if the stream is lost and recreated.

:class:`EventStore` is one class in four parts: its construction and single appends (here), the
batch append (:mod:`.sync_batch`), the reads and replay (:mod:`.sync_reads`, which states the
replay contract), and job control: leases, the attempt and cancel checks (:mod:`.sync_control`).

Clients must be created with ``decode_responses=True``.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import Settings
from ..events.schema import ProgressEvent
from ._scripts import (
    APPEND_BATCH_LUA,
    APPEND_LUA,
    CLAIM_FAILED,
    EXPIRED_LUA,
    LEASE_LUA,
    REPLAY_LUA,
    Lease,
    append_call,
    appended,
)
from .clients import close_client, sync_client
from .errors import translated_sync
from .keys import KeySpace
from .sync_batch import BatchAppends
from .sync_control import JobControl, LeaseStatus
from .sync_reads import StoreReads

__all__ = ["EventStore", "Lease", "LeaseStatus"]

try:  # redis-py >= 7.1 names the library through driver_info; None sends no CLIENT SETINFO
    from redis.driver_info import DriverInfo

    _NO_CLIENT_SETINFO: dict[str, Any] = {"driver_info": DriverInfo(name=None, lib_version=None)}
except ImportError:  # pragma: no cover - older redis-py
    _NO_CLIENT_SETINFO = {"lib_name": None, "lib_version": None}


class EventStore(StoreReads, BatchAppends, JobControl):
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
        until its holder stops renewing it (:meth:`renew_leases`); a terminal event or a
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
    def ping(self) -> None:
        """Raise :class:`~progress_bridge.exceptions.StreamUnavailable` unless Redis answers."""
        self.client.ping()

    def close(self) -> None:
        close_client(self.client)
