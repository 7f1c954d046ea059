"""The event store for asyncio code (the bridge, the web app): the same contract as
:class:`~progress_bridge.store.sync.EventStore`, plus the batched reads the bridge needs.

Every method raises :class:`~progress_bridge.exceptions.StreamUnavailable` when Redis cannot be
reached or refuses the call (never a Redis exception).
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis.asyncio as aioredis

from ..config import Settings
from ..events.records import Replay
from ..events.schema import ProgressEvent
from ..events.snapshot import DOCUMENT_FIELD, EPOCH_FIELD, LAST_ID_FIELD, OWNER_FIELD, JobSnapshot
from ._scripts import (
    APPEND_LUA,
    REPLAY_LUA,
    append_call,
    appended,
    decide_replay,
    validate_position,
)
from .clients import aclose_client, async_client
from .errors import translated_async
from .keys import KeySpace

__all__ = ["AsyncEventStore", "JobMeta"]

#: Who owns a job and which document it works on (either may be unknown).
JobMeta = tuple[str | None, str | None]


class AsyncEventStore:
    """The same store for asyncio code (the bridge, the web app)."""

    def __init__(self, client: aioredis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or Settings()
        self.keys = KeySpace(self.settings.key_prefix, self.settings.feed_shards)
        self._append = client.register_script(APPEND_LUA)
        self._replay = client.register_script(REPLAY_LUA)

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None, **kwargs: Any) -> AsyncEventStore:
        settings = settings or Settings()
        return cls(async_client(url, settings, **kwargs), settings)

    @translated_async
    async def append(
        self, event: ProgressEvent, *, increments: dict[str, int] | None = None
    ) -> ProgressEvent:
        """See :meth:`EventStore.append`."""
        keys, argv = append_call(self.keys, self.settings, event, increments)
        return appended(event, await self._append(keys=keys, args=argv))

    @translated_async
    async def snapshot(self, job_id: str) -> JobSnapshot | None:
        raw = cast(dict[str, str], await self.client.hgetall(self.keys.snapshot(job_id)))
        return JobSnapshot.from_hash(job_id, raw) if raw.get("epoch") else None

    @translated_async
    async def replay(
        self, job_id: str, epoch: str | None = None, last_id: str | None = None
    ) -> Replay:
        """See :meth:`EventStore.replay`."""
        validate_position(job_id, epoch, last_id)
        raw = await self._replay(
            keys=[self.keys.stream(job_id), self.keys.snapshot(job_id)], args=[last_id or "-"]
        )
        answer, needs_snapshot = decide_replay(job_id, epoch, last_id, raw)
        if needs_snapshot:
            snap = await self.snapshot(job_id)
            answer = Replay(job_id, False, answer.reason, answer.epoch, answer.entries, snap)
        return answer

    @translated_async
    async def entries_after(self, job_id: str, last_id: str | None) -> Replay:
        """The job's entries after ``last_id`` (None: all), whatever its epoch, for a reader
        that lost notifications: ``recovered`` is False when some may have been trimmed."""
        if last_id is not None:
            validate_position(job_id, "any", last_id)
        raw = await self._replay(
            keys=[self.keys.stream(job_id), self.keys.snapshot(job_id)], args=[last_id or "-"]
        )
        return decide_replay(job_id, None, last_id, raw)[0]

    @translated_async
    async def jobs_of(self, owner: str, limit: int = 100) -> list[str]:
        """See :meth:`EventStore.jobs_of`."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrevrange(self.keys.owner_index(owner, shard), 0, limit - 1, withscores=True)
        rows = [row for shard_rows in await pipe.execute() for row in shard_rows]
        return [job for job, _ in sorted(rows, key=lambda r: -r[1])[:limit]]

    @translated_async
    async def snapshots(self, job_ids: list[str]) -> list[JobSnapshot | None]:
        """Snapshots of ``job_ids`` in one round trip (None for a job that does not exist)."""
        if not job_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.snapshot(job_id))
        rows = cast(list[dict[str, str]], await pipe.execute())
        return [
            JobSnapshot.from_hash(job_id, raw) if raw.get(EPOCH_FIELD) else None
            for job_id, raw in zip(job_ids, rows, strict=True)
        ]

    @translated_async
    async def last_ids(self, job_ids: list[str]) -> dict[str, str]:
        """Each job's last stored id in one round trip (jobs that do not exist are left out)."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.snapshot(job_id), LAST_ID_FIELD)
        rows = cast(list[str | None], await pipe.execute())
        return {job: last for job, last in zip(job_ids, rows, strict=True) if last}

    @translated_async
    async def job_meta(self, job_id: str) -> JobMeta | None:
        """The job's owner and document (one HMGET), or None when the job does not exist."""
        epoch, owner, doc = await self.client.hmget(
            self.keys.snapshot(job_id), [EPOCH_FIELD, OWNER_FIELD, DOCUMENT_FIELD]
        )
        if epoch is None:
            return None
        return _meta(cast(str | None, owner), cast(str | None, doc))

    @translated_async
    async def job_meta_many(self, job_ids: list[str]) -> dict[str, JobMeta]:
        """Owner and document of each job in one round trip (unknown jobs: ``(None, None)``)."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.snapshot(job_id), [OWNER_FIELD, DOCUMENT_FIELD])
        rows = await pipe.execute()
        return {job: _meta(owner, doc) for job, (owner, doc) in zip(job_ids, rows, strict=True)}

    @translated_async
    async def ping(self) -> None:
        """Raise :class:`~progress_bridge.exceptions.StreamUnavailable` unless Redis answers."""
        await self.client.ping()

    async def aclose(self) -> None:
        await aclose_client(self.client)


def _meta(owner: str | None, doc: str | None) -> JobMeta:
    return (json.loads(owner) if owner else None, json.loads(doc) if doc else None)
