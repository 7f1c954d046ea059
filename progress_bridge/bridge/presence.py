"""Presence: this process's watchers in the shared presence sets, and what they are told.

Each connection subscribed to a job by id is one watcher (:mod:`progress_bridge.store.presence`:
a member of the job's set, scored by when it expires). Every watcher is counted; only those
whose subscribe asked (``presence: true``) are told, so a client that predates presence frames
never receives one. Admins are told the users' names too; everyone else only the count.

A watcher that asked is added before its subscribe is answered (the answer says how many
watch: one Redis call on the subscribe's path). One that did not ask is added at the next tick,
with every other such join in one call: a connect storm of clients that do not ask costs Redis
one call per ``presence_interval_s``, not one per subscribe. Every ``presence_interval_s`` the
tracker adds and removes what changed, refreshes all of its watchers every third of the time to
live, reads the counts of the jobs someone here asked about — one script call per shard — and
sends a ``presence`` frame to each such watcher whose numbers changed since it was last told.
Watchers of a killed bridge are not refreshed: they leave every count within the time to live.
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
        #: Watchers that did not ask, added at the next tick.
        self._joining: dict[str, list[str]] = defaultdict(list)
        self._refreshed_at = 0.0

    @staticmethod
    def told(presence: Presence, admin: bool) -> _Told:
        return presence.watching, presence.users if admin else None

    @staticmethod
    def as_frame(told: _Told) -> dict[str, Any]:
        watching, users = told
        return {"watching": watching, **({"users": list(users)} if users is not None else {})}

    async def of(self, job_id: str, *, admin: bool) -> dict[str, Any]:
        """Who watches the job across every bridge, as a ``presence`` field (names for admins).

        Raises:
            StreamUnavailable, StoreRejected: Redis did not answer.
        """
        presence = (await self.store.apply({}, read=[job_id], users=admin))[job_id]
        return self.as_frame(self.told(presence, admin))

    async def watched_here(self) -> dict[str, dict[str, Any]]:
        """Per job watched on this bridge: how many watch it across bridges, and who.

        Raises:
            StreamUnavailable, StoreRejected: Redis did not answer.
        """
        read = await self.store.apply({}, read=list(self.watchers), users=True)
        return {job: {"watching": p.watching, "users": list(p.users)} for job, p in read.items()}

    async def join(self, conn: Connection, job_id: str, *, tell: bool) -> _Told | None:
        """Add the connection as a watcher of the job. ``tell`` (it asked for ``presence``
        frames): added now, and what its answer says is returned; otherwise added at the next
        tick, and None.

        Raises:
            StreamUnavailable, StoreRejected: Redis did not take it (``tell`` only).
        """
        known = self.watchers.get(job_id, {}).get(conn)
        principal = conn.session.principal
        member = (
            known.member
            if known
            else watcher_member(self.bridge_id, next(self._numbers), principal.user)
        )
        if not tell:
            if known is None:
                self._joining[job_id].append(member)
            self.watchers.setdefault(job_id, {})[conn] = _Watcher(member, False, None)
            self._jobs_of[conn].add(job_id)
            return None
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
        joining = self._joining.get(job_id)
        if joining is not None and watcher.member in joining:
            joining.remove(watcher.member)  # never added: nothing to remove
        else:
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
        joining, self._joining = self._joining, defaultdict(list)
        changes = {job: PresenceChange(remove=members) for job, members in leaving.items()}
        for job, members in joining.items():
            if members:
                changes.setdefault(job, PresenceChange()).add = list(members)
        if now - self._refreshed_at >= self.ttl_s / 3:
            self._refreshed_at = now
            for job, mine in self.watchers.items():
                change = changes.setdefault(job, PresenceChange())
                change.add = [w.member for w in mine.values()]
        # Counts are read only where a watcher here asked to be told.
        asked = {job: [c for c, w in mine.items() if w.tell] for job, mine in self.watchers.items()}
        jobs = [job for job, conns in asked.items() if conns]
        admins = any(c.session.principal.admin for job in jobs for c in asked[job])
        try:
            result = await self.store.apply(changes, read=jobs, users=admins)
        except (StreamUnavailable, StoreRejected):
            for job, members in leaving.items():  # removed next time
                self._leaving[job].extend(members)
            # Added next time; a watcher that left meanwhile is also in _leaving, and the store
            # applies a call's adds before its removes, so it ends removed.
            for job, members in joining.items():
                self._joining[job].extend(members)
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
