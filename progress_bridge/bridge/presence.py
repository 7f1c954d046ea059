"""Presence: this process's watchers in the shared presence sets, and what they are told.

Each connection subscribed to a job by id is one watcher (:mod:`progress_bridge.store.presence`:
a member of the job's set, scored by when it expires). The tracker adds it before the subscribe
is answered (the answer says how many watch), removes it on unsubscribe or close, refreshes all
of its process's watchers every third of the time to live, and every ``presence_interval_s``
reads the counts of the jobs its connections watch — one script call per shard — and sends a
``presence`` frame to each watcher whose numbers changed since it was last told. Watchers of a
killed bridge are not refreshed: they leave every count within the time to live.

Every watcher is counted; only those whose subscribe asked (``presence: true``) are told, so a
client that predates presence frames never receives one. Admins are told the users' names too;
everyone else only the count.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import defaultdict
from typing import Any, Protocol

from ..config import Settings
from ..exceptions import StoreRejected, StreamUnavailable
from ..store.presence import Presence, PresenceChange, PresenceStore, watcher_member
from .connection import Connection

__all__ = ["PresenceTracker"]

log = logging.getLogger("progress_bridge.bridge")

#: What a watcher was last told: (watching, users or None).
_Told = tuple[int, tuple[str, ...] | None]


class _Flusher(Protocol):
    def flush(self, conns: Any) -> None: ...


class _Watcher:
    __slots__ = ("member", "tell", "told")

    def __init__(self, member: str, tell: bool, told: _Told | None) -> None:
        self.member = member
        #: The subscribe asked for presence frames (every watcher is counted either way).
        self.tell = tell
        self.told = told


class PresenceTracker:
    """This process's watchers, kept in Redis; presence frames to its connections."""

    def __init__(self, store: PresenceStore, settings: Settings) -> None:
        self.store = store
        self.interval = settings.bridge_presence_interval_s
        self.ttl_s = settings.bridge_presence_ttl_s
        #: Unique per process: a watcher's member names its bridge.
        self.bridge_id = secrets.token_hex(6)
        self._numbers = itertools.count(1)
        self.watchers: dict[str, dict[Connection, _Watcher]] = {}
        self._jobs_of: dict[Connection, set[str]] = defaultdict(set)
        self._leaving: dict[str, list[str]] = defaultdict(list)
        self._refreshed_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @staticmethod
    def told(presence: Presence, admin: bool) -> _Told:
        return presence.watching, presence.users if admin else None

    @staticmethod
    def as_frame(told: _Told) -> dict[str, Any]:
        watching, users = told
        return {"watching": watching, **({"users": list(users)} if users is not None else {})}

    async def join(self, conn: Connection, job_id: str, *, tell: bool) -> _Told:
        """Add the connection as a watcher of the job; return what it is told in its answer.
        ``tell``: it asked for ``presence`` frames.

        Raises:
            StreamUnavailable, StoreRejected: Redis did not take it.
        """
        known = self.watchers.get(job_id, {}).get(conn)
        principal = conn.session.principal
        member = (
            known.member
            if known
            else watcher_member(self.bridge_id, next(self._numbers), principal.user)
        )
        result = await self.store.apply(
            {job_id: PresenceChange(add=[member])}, users=principal.admin
        )
        told = self.told(result[job_id], principal.admin)
        self.watchers.setdefault(job_id, {})[conn] = _Watcher(member, tell, told)
        self._jobs_of[conn].add(job_id)
        return told

    def leave(self, conn: Connection, job_id: str) -> None:
        """The connection stopped watching the job (removed from Redis at the next tick)."""
        watchers = self.watchers.get(job_id)
        watcher = watchers.pop(conn, None) if watchers else None
        if watcher is None:
            return
        self._leaving[job_id].append(watcher.member)
        if not watchers:
            del self.watchers[job_id]
        jobs = self._jobs_of.get(conn)
        if jobs is not None:
            jobs.discard(job_id)
            if not jobs:
                del self._jobs_of[conn]

    def forget(self, conn: Connection) -> None:
        """The connection closed: it watches nothing any more."""
        for job_id in list(self._jobs_of.get(conn, ())):
            self.leave(conn, job_id)

    async def run(self, hub: _Flusher) -> None:
        """Refresh, remove and read every interval; tell watchers what changed. Until
        cancelled; a Redis outage is logged and retried at the next tick."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick(hub)
            except (StreamUnavailable, StoreRejected) as exc:
                log.warning("presence: %s", exc)

    async def tick(self, hub: _Flusher) -> None:
        now = time.monotonic()
        leaving, self._leaving = self._leaving, defaultdict(list)
        changes = {job: PresenceChange(remove=members) for job, members in leaving.items()}
        if now - self._refreshed_at >= self.ttl_s / 3:
            self._refreshed_at = now
            for job, mine in self.watchers.items():
                change = changes.setdefault(job, PresenceChange())
                change.add = [w.member for w in mine.values()]
        jobs = list(self.watchers)
        admins = any(c.session.principal.admin for ws in self.watchers.values() for c in ws)
        try:
            result = await self.store.apply(changes, read=jobs, users=admins)
        except (StreamUnavailable, StoreRejected):
            for job, members in leaving.items():  # removed next time
                self._leaving[job].extend(members)
            raise
        woken = []
        for job in jobs:
            presence = result.get(job)
            watchers = self.watchers.get(job)
            if presence is None or not watchers:
                continue  # left while the counts were read
            for conn, watcher in watchers.items():
                if not watcher.tell:
                    continue
                told = self.told(presence, conn.session.principal.admin)
                if told != watcher.told:
                    watcher.told = told
                    watching, users = told
                    users_list = list(users) if users is not None else None
                    if conn.session.presence(job, watching, users_list, time.monotonic()):
                        woken.append(conn)
        if woken:
            hub.flush(woken)
