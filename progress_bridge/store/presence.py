"""Presence: how many clients watch each job, and which users, across every bridge process.

One sorted set per job (:meth:`KeySpace.presence`, in the job's slot): a member per watcher
(``<bridge id>:<n>:<user>``), scored by when it expires in server time. Each bridge adds its
watchers as they subscribe, refreshes them well within the time to live and removes them when
they leave; a bridge that dies stops refreshing, so its watchers disappear within one time to
live with no one cleaning up after it. All reads and writes of one shard's jobs are one script
call (``lua/presence.lua``), so a bridge's periodic refresh and poll cost one round trip per
shard.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._scripts import PRESENCE_LUA
from .errors import translated_async
from .keys import KeySpace

__all__ = ["Presence", "PresenceChange", "PresenceStore", "watcher_member"]


@dataclass(frozen=True)
class Presence:
    """A job's watchers: how many connections, and (up to a bound) which users, sorted by name."""

    watching: int = 0
    users: tuple[str, ...] = ()


@dataclass
class PresenceChange:
    """What one call changes for one job: watchers to add (or refresh) and to remove."""

    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


def watcher_member(bridge_id: str, number: int, user: str) -> str:
    """One watcher's member: its bridge (unique per process), a number unique in that bridge, and
    the user (last, so a user name may hold any character)."""
    return f"{bridge_id}:{number}:{user}"


class PresenceStore:
    """Reads and writes the presence sets (an asyncio redis client, standalone or cluster)."""

    def __init__(self, client: Any, keys: KeySpace, *, ttl_ms: int, max_users: int = 100) -> None:
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.max_users = max_users
        self._script = client.register_script(PRESENCE_LUA)

    @translated_async
    async def apply(
        self,
        changes: Mapping[str, PresenceChange],
        *,
        read: Iterable[str] = (),
        users: bool = False,
    ) -> dict[str, Presence]:
        """Apply ``changes`` (job id → watchers added or refreshed and removed) and read the jobs
        in ``read``; returns the presence of every job named, after the change.

        ``users`` asks for the users' names too (for admins); otherwise only counts.
        """
        by_shard: dict[int, list[str]] = defaultdict(list)
        for job_id in {*changes, *read}:
            by_shard[self.keys.shard_of(job_id)].append(job_id)
        max_users = self.max_users if users else 0
        calls = [self._call(jobs, changes, max_users) for jobs in by_shard.values()]
        out: dict[str, Presence] = {}
        for part in await asyncio.gather(*calls):
            out.update(part)
        return out

    async def _call(
        self, jobs: list[str], changes: Mapping[str, PresenceChange], max_users: int
    ) -> dict[str, Presence]:
        args: list[Any] = [self.ttl_ms, max_users]
        for job_id in jobs:
            change = changes.get(job_id) or PresenceChange()
            args += [len(change.add), len(change.remove), *change.add, *change.remove]
        rows = await self._script(keys=[self.keys.presence(j) for j in jobs], args=args)
        return {
            job_id: Presence(int(row[0]), tuple(sorted(str(user) for user in row[1:])))
            for job_id, row in zip(jobs, rows, strict=True)
        }
