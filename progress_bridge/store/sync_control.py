"""Job control in the synchronous store: the running jobs' leases, and what a run checks in
its job's snapshot (its attempt, whether the job has ended: the cancel check).

A lease (``lease.lua``) marks a job as running while its process renews it; the reaper finds
the expired ones (:meth:`JobControl.expired_leases`) and ends or redelivers their jobs with
:meth:`~.sync.EventStore.append_claimed`. A part of :class:`~.sync.EventStore`.
"""

from __future__ import annotations

from typing import Literal, cast

import redis
from redis.commands.core import Script

from ..events.snapshot import ATTEMPT_FIELD, TERMINAL_FIELD
from .errors import translated_sync
from .keys import KeySpace

__all__ = ["JobControl", "LeaseStatus"]

#: What :meth:`EventStore.renew_leases` and :meth:`EventStore.release_lease` report (lease.lua).
LeaseStatus = Literal["ok", "lost", "moved", "behind", "ended", "taken"]


class JobControl:
    """Leases and the run's checks, mixed into :class:`~.sync.EventStore` (which sets these)."""

    client: redis.Redis
    keys: KeySpace
    _lease: Script
    _expired: Script

    @translated_sync
    def renew_leases(
        self, leases: list[tuple[str, str, str | None, str | None]], lease_ms: int
    ) -> list[LeaseStatus]:
        """Renew the leases ``(job_id, holder token, epoch last written, greatest id written in
        it)`` in one round trip.

        See ``lease.lua`` for what each status means to the holder.
        """
        if not leases:
            return []
        pipe = self.client.pipeline(transaction=False)
        for job_id, token, epoch, last_id in leases:
            running, info = self.keys.running_of(job_id)
            self._lease(
                keys=[running, info, self.keys.snapshot(job_id)],
                args=[job_id, token, "renew", lease_ms, epoch or "", last_id or ""],
                client=pipe,
            )
        return cast(list[LeaseStatus], pipe.execute())

    @translated_sync
    def release_lease(self, job_id: str, token: str) -> LeaseStatus:
        """Give up the job's lease if ``token`` still holds it ("ok"), else "taken"."""
        running, info = self.keys.running_of(job_id)
        keys = [running, info, self.keys.snapshot(job_id)]
        args: list[str | int] = [job_id, token, "release", 0, "", ""]
        return cast(LeaseStatus, self._lease(keys=keys, args=args))

    @translated_sync
    def expired_leases(self, shard: int, limit: int = 100) -> list[tuple[str, str]]:
        """``(job_id, lease value)`` of the shard's running jobs whose lease has expired."""
        flat = cast(
            list[str],
            self._expired(
                keys=[self.keys.running(shard), self.keys.running_info(shard)], args=[limit]
            ),
        )
        return list(zip(flat[::2], flat[1::2], strict=True))

    @translated_sync
    def job_state(self, job_id: str) -> tuple[int, str | None]:
        """The attempt recorded in the job's snapshot (0 if none) and its terminal event type
        (None while it runs): what a new attempt checks before it starts.

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        raw_attempt, terminal = self.client.hmget(
            self.keys.snapshot(job_id), [ATTEMPT_FIELD, TERMINAL_FIELD]
        )
        try:
            attempt = int(cast(str, raw_attempt)) if raw_attempt else 0
        except (TypeError, ValueError):
            attempt = 0
        return attempt, (str(terminal) if terminal else None)

    @translated_sync
    def attempt_of(self, job_id: str) -> int:
        """The attempt number recorded in the job's snapshot (0 if none).

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        raw = self.client.hget(self.keys.snapshot(job_id), ATTEMPT_FIELD)
        try:
            return int(cast(str, raw)) if raw else 0
        except (TypeError, ValueError):
            return 0

    @translated_sync
    def terminal_of(self, job_id: str) -> str | None:
        """The job's terminal event type once it has ended (the cancel check), else None.

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        value = self.client.hget(self.keys.snapshot(job_id), TERMINAL_FIELD)
        return str(value) if value else None
