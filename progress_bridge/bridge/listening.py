"""Per-job routing (``feed_mode = "notify"``): the channels this process hears, and its gaps.

The hub tells :class:`Listening` when a job or room gets its first local watcher and loses its
last; Listening keeps the process subscribed to exactly those channels
(:class:`~progress_bridge.store.notify.JobNotifications`), so Redis sends each event only to
the bridges whose clients watch it. A subscribe waits (:meth:`Listening.heard`) until Redis has
confirmed its channels before it reads the job's history: every entry appended later is heard.

Pub/sub forgets what it sends while a connection is down. When a channel is confirmed *again*
(the connection came back, or its slot moved to another node), entries may be missing, so the
gap is read back from the job streams by id — the replay path — and routed before any live entry
heard meanwhile (those are held until then): each connection gets what it missed, in order, and
drops what it already had (its per-job position). For a job no connection has a position in
(one that started in the gap, seen through a room), the gap starts a little before the last
notification read. If the gap cannot be read (trimmed, or Redis stays away) the watching
connections are closed with 1012: clients resume by the protocol, which tells them plainly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from ..config import Settings
from ..events.records import Replay
from ..exceptions import StoreRejected, StreamUnavailable
from ..store.aio import AsyncEventStore
from ..store.notify import JobNotifications
from .caches import JobMeta, SnapshotCache
from .connection import Connection
from .core import CloseCode, FeedEntry

__all__ = ["Listening"]

log = logging.getLogger("progress_bridge.bridge")

#: Live entries held while gaps are read back, at most (then watchers are closed 1012).
MAX_HELD = 100_000
#: A job no connection has a position in is read back from this long before the last read
#: (covers the clock difference between this host and Redis, whose time stamps the ids).
GAP_MARGIN_MS = 5_000
#: A user room's gap covers that user's newest jobs, at most this many.
ROOM_JOBS = 100
#: Reading a gap back is given up (watchers closed 1012) after failing this long.
GIVE_UP_S = 30.0


class Router(Protocol):
    """What Listening needs of the hub (:class:`~.hub.Hub`)."""

    settings: Settings
    reader_ok_at: float
    meta: JobMeta
    by_job: dict[str, set[Connection]]
    by_user: dict[str, set[Connection]]
    by_doc: dict[str, set[Connection]]
    snapshots: SnapshotCache

    def recipients_of(self, job_id: str) -> set[Connection]: ...

    async def learn_meta(self, entries: list[FeedEntry]) -> None: ...

    async def learn_jobs(self, job_ids: Iterable[str]) -> None: ...

    def deliver(self, entries: list[FeedEntry], now: float | None = None) -> None: ...


class Listening:
    """What one bridge process listens to, and the gaps it reads back (see the module)."""

    def __init__(self, hub: Router, notes: JobNotifications, store: AsyncEventStore) -> None:
        self.hub = hub
        self.notes = notes
        self.store = store
        self.keys = store.keys
        notes.confirmed = self._confirmed
        self._held: list[FeedEntry] | None = None
        self._gaps: set[tuple[str, str]] = set()
        self._since_ms = 0
        self._task: asyncio.Task[None] | None = None
        #: Gaps read back (for tests and metrics).
        self.gaps_read = 0

    # -- which channels ----------------------------------------------------------------------

    def _channels(self, job_id: str | None, room: str | None) -> list[str]:
        if job_id is not None:
            return [self.keys.job_channel(job_id)]
        assert room is not None
        kind, _, name = room.partition(":")
        return self.keys.room_channels("user" if kind == "user" else "doc", name)

    def job(self, job_id: str, on: bool) -> None:
        """The job got its first local watcher (``on``) or lost its last."""
        self._set(self._channels(job_id, None), on)

    def room(self, room: str, on: bool) -> None:
        """The room got its first local watcher (``on``) or lost its last."""
        self._set(self._channels(None, room), on)

    def _set(self, channels: list[str], on: bool) -> None:
        for channel in channels:
            if on:
                self.notes.want(channel)
            else:
                self.notes.unwant(channel)

    async def heard(self, *, job_id: str | None = None, room: str | None = None) -> None:
        """Return once Redis has confirmed the job's or room's channels.

        Raises:
            StreamUnavailable: not confirmed in time.
        """
        timeout = self.hub.settings.bridge_redis_pool_timeout_s
        await self.notes.heard(self._channels(job_id, room), timeout)

    # -- gaps --------------------------------------------------------------------------------

    def holding(self, entries: list[FeedEntry]) -> bool:
        """Hold live entries while a gap is read back (True: held, route nothing now)."""
        if self._held is None:
            return False
        self._held.extend(entries)
        if len(self._held) > MAX_HELD:
            self._give_up("too many events arrived while a gap was read back")
        return True

    def _confirmed(self, channel: str, again: bool) -> None:
        if not again:
            return
        subject = self.keys.channel_subject(channel)
        if subject is None:
            return
        self.hub.snapshots.clear()  # entries may have been missed: no cached copy is current
        if self._held is None:
            # The connection broke after the last read returned: the gap starts before it.
            last_read_ago = time.monotonic() - self.hub.reader_ok_at
            self._since_ms = int((time.time() - last_read_ago) * 1000) - GAP_MARGIN_MS
            self._held = []
        self._gaps.add(subject)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._read_back(), name="pb-notify-gaps")

    async def _read_back(self) -> None:
        delay, failing_since = 0.05, None
        while self._gaps and self._held is not None:
            subjects, self._gaps = self._gaps, set()
            try:
                await self._fill(subjects)
                delay, failing_since = 0.05, None
            except (StreamUnavailable, StoreRejected) as exc:
                self._gaps |= subjects
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > GIVE_UP_S:
                    self._give_up(f"the gap could not be read back ({exc})")
                    return
                log.warning("reading a notification gap back: %s; retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        held, self._held = self._held, None
        if held:
            await self.hub.learn_meta(held)
            self.hub.deliver(held)

    async def _fill(self, subjects: set[tuple[str, str]]) -> None:
        hub = self.hub
        jobs: dict[str, set[Connection]] = {}
        for kind, name in subjects:
            if kind == "job":
                candidates: Iterable[str] = [name]
            elif kind == "user":
                candidates = await self.store.jobs_of(name, ROOM_JOBS)
            else:
                candidates = [job for job, (_, doc) in hub.meta.items() if doc == name]
            await hub.learn_jobs(candidates)  # whose rooms they are in
            for job in candidates:
                conns = hub.recipients_of(job)
                if conns:
                    jobs.setdefault(job, set()).update(conns)
        for job, conns in jobs.items():
            start = self._start(job, conns)
            replay = await self.store.entries_after(job, start)
            if replay.reason == "unknown_job":
                continue
            if not replay.recovered:
                self._close(conns, f"events of job {job} could not be read back")
                continue
            batch = _entries(replay)
            if batch:
                await hub.learn_meta(batch)
                hub.deliver(batch)
        self.gaps_read += 1
        log.info("notification gap read back", extra={"jobs": len(jobs)})

    def _start(self, job_id: str, conns: set[Connection]) -> str:
        """Read after the oldest position among the job's watchers."""
        positions = [conn.session.last_sent(job_id) for conn in conns]
        known = [p for p in positions if p is not None]
        if len(known) < len(positions) or not known:
            return f"{max(0, self._since_ms)}-0"
        ms, seq = min(known)
        return f"{ms}-{seq}"

    def _give_up(self, why: str) -> None:
        log.warning("closing watchers to resume by the protocol: %s", why)
        self._held, self._gaps = None, set()
        hub = self.hub
        watching = {c for subs in hub.by_job.values() for c in subs}
        watching.update(c for subs in hub.by_user.values() for c in subs)
        watching.update(c for subs in hub.by_doc.values() for c in subs)
        self._close(watching, why)

    def _close(self, conns: Iterable[Connection], why: str) -> None:
        for conn in conns:
            conn.session.close(CloseCode.RESTART, why[:120])
            conn.flush()  # sends the close

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _entries(replay: Replay) -> list[FeedEntry]:
    out = []
    for stored in replay.entries:
        try:
            out.append(FeedEntry.from_stored(stored))
        except ValueError as exc:
            log.warning("skipping malformed entry %s: %r", stored.id, exc)
    return out
