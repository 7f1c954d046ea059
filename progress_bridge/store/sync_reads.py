"""The read side of the synchronous store: snapshots, replay after a position, a job's
history, an owner's jobs, following a job's stream.

Replay contract (also in ``docs/protocol.md``): :meth:`StoreReads.replay` returns every event
after ``last_id`` when the epoch matches and nothing after ``last_id`` was trimmed
(``recovered=True``); otherwise ``recovered=False`` with the reason and the job's snapshot. It
never returns a partial history silently. A part of :class:`~.sync.EventStore`.
"""

from __future__ import annotations

from typing import cast

import redis
from redis.commands.core import Script

from ..events.records import Replay, StoredEntry
from ..events.schema import ProgressEvent
from ..events.snapshot import JobSnapshot
from ._scripts import decide_replay, validate_position
from .errors import translated_sync
from .keys import KeySpace

__all__ = ["StoreReads"]


class StoreReads:
    """The reads, mixed into :class:`~.sync.EventStore` (which sets these)."""

    client: redis.Redis
    keys: KeySpace
    _replay: Script

    @translated_sync
    def snapshot(self, job_id: str) -> JobSnapshot | None:
        raw = cast(dict[str, str], self.client.hgetall(self.keys.snapshot(job_id)))
        return JobSnapshot.from_hash(job_id, raw) if raw.get("epoch") else None

    @translated_sync
    def replay(self, job_id: str, epoch: str | None = None, last_id: str | None = None) -> Replay:
        """Events after ``(epoch, last_id)``, or an explicit "not recovered" with the snapshot.

        ``last_id=None`` asks for the whole kept history.
        """
        validate_position(job_id, epoch, last_id)
        raw = self._replay(
            keys=[self.keys.stream(job_id), self.keys.snapshot(job_id)], args=[last_id or "-"]
        )
        answer, needs_snapshot = decide_replay(job_id, epoch, last_id, raw)
        if needs_snapshot:
            snap = self.snapshot(job_id)
            answer = Replay(job_id, False, answer.reason, answer.epoch, answer.entries, snap)
        return answer

    @translated_sync
    def history(self, job_id: str) -> list[ProgressEvent]:
        """Every kept event of a job, parsed (a convenience for tools and tests)."""
        return [entry.event() for entry in self.replay(job_id).entries]

    @translated_sync
    def jobs_of(self, owner: str, limit: int = 100) -> list[str]:
        """The owner's most recent job ids, newest first."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrevrange(self.keys.owner_index(owner, shard), 0, limit - 1, withscores=True)
        rows = [row for shard_rows in pipe.execute() for row in shard_rows]
        return [job for job, _ in sorted(rows, key=lambda r: -r[1])[:limit]]

    @translated_sync
    def exists(self, job_id: str) -> bool:
        """Whether the job's history is still kept."""
        return bool(self.client.exists(self.keys.stream(job_id)))

    @translated_sync
    def follow(
        self, job_id: str, epoch: str, after: str, *, block_ms: int, count: int = 500
    ) -> list[StoredEntry]:
        """Entries of the job after ``after``, waiting up to ``block_ms`` for the first one.

        The client's socket timeout must exceed ``block_ms`` (redis-py's default is 5 s).
        """
        rows = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            self.client.xread({self.keys.stream(job_id): after}, block=block_ms, count=count),
        )
        if not rows:
            return []
        return [
            StoredEntry(job_id, entry_id, epoch, fields["e"]) for entry_id, fields in rows[0][1]
        ]
