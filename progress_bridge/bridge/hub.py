"""Fan-out: every connection of one process, its routing tables, and the one feed reader.

:class:`Hub` owns every connection of the process and three routing tables (by job, by
``user:`` room, by ``document:`` room). Its feed reader loop (:func:`.feed_loop.run_reader`)
drives the process's only feed reader (:class:`~progress_bridge.store.FeedReader`); each entry
becomes one :class:`~progress_bridge.bridge.core.FeedEntry` shared by every recipient; routing
only appends to outboxes, with no await per delivery, then writes each connection that got
frames at once (:meth:`~progress_bridge.bridge.connection.Connection.flush`), so a socket that
keeps up costs no task switch and a slow one only ever delays itself.

Two ways to hear of events (``feed_mode``). With ``stream`` (DESIGN.md option (a)) every bridge
reads and parses every event of every job, whether or not it has subscribers for it; adding
bridges adds sockets, not event throughput. With ``notify`` (option (b)) the hub listens to the
pub/sub channels of the jobs and rooms its connections watch (:class:`~.listening.Listening`), so
Redis sends a bridge only those; a subscribe waits for its channels' confirmation before it reads
history, and a channel confirmed again (a reconnection, a slot move) has its gap read back from
the job streams. Figures are in ``docs/benchmarks.md``.

What the hub remembers of jobs (owners and documents, snapshots) is in :mod:`.caches`; its
sweeper (heartbeats, the slow-consumer bound, closes) in :mod:`.sweeper`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterable

from ..access import Principal
from ..config import Settings
from ..events.snapshot import JobSnapshot
from ..store.aio import AsyncEventStore
from ..store.feed import FeedReader
from ..store.feed_cluster import ClusterFeedReader
from ..store.notify import JobNotifications
from .caches import JobMeta, SnapshotCache
from .connection import Connection
from .core import CloseCode, FeedEntry
from .feed_loop import run_reader
from .listening import Listening
from .metrics import BridgeMetrics
from .position_check import PositionCheck
from .presence import PresenceTracker
from .sweeper import run_sweeper

__all__ = ["Hub"]


class Hub:
    """Every connection of one process and the single feed reader that serves them."""

    def __init__(
        self,
        settings: Settings,
        reader: FeedReader | ClusterFeedReader | JobNotifications,
        store: AsyncEventStore,
        metrics: BridgeMetrics,
    ) -> None:
        self.settings = settings
        self.reader = reader
        #: With per-job notifications: which channels to hear, and the gaps to read back.
        self.listening = (
            Listening(self, reader, store) if isinstance(reader, JobNotifications) else None
        )
        #: Who watches which job across bridges (None: presence is off).
        self.presence: PresenceTracker | None = None
        #: Reads back what a watched job's live source did not bring (None: off).
        self.position_check = (
            PositionCheck(self, settings.bridge_position_check_s)
            if settings.bridge_position_check_s > 0
            else None
        )
        self.store = store
        self.metrics = metrics
        self.conns: dict[int, Connection] = {}
        self.per_user: Counter[str] = Counter()
        self.by_job: dict[str, set[Connection]] = {}
        self.by_user: dict[str, set[Connection]] = {}
        self.by_doc: dict[str, set[Connection]] = {}
        #: job → (owner, document), for room routing and authorization without a read.
        self.meta = JobMeta()
        #: job → its snapshot as of the last entry routed for it (for first subscribes).
        self.snapshots = SnapshotCache()
        self.started = False
        #: Set once the feed reader has its starting positions: a subscribe must not read a
        #: job's history before (an entry appended between the two would be in neither).
        self.primed = asyncio.Event()
        self.reader_ok_at = 0.0
        self.backlogged = True
        self._tasks: list[asyncio.Task[None]] = []
        #: Set when the last connection leaves, while stop() waits for that.
        self._drained: asyncio.Event | None = None
        metrics.sample_connections(lambda: len(self.conns))
        metrics.sample_outboxes(
            lambda: [c.session.outbox_depth for c in self.conns.values()],
            lambda: sum(c.buffered() for c in self.conns.values()),
        )

    # -- connections -------------------------------------------------------------------------

    def admit(self, principal: Principal) -> tuple[int, str] | None:
        """None, or the close code and reason refusing one more connection for this user."""
        s = self.settings
        if len(self.conns) >= s.bridge_max_connections:
            return CloseCode.TOO_MANY_CONNECTIONS, "too many connections"
        if self.per_user[principal.user] >= s.bridge_max_connections_per_user:
            return CloseCode.TOO_MANY_CONNECTIONS, "too many connections for this user"
        return None

    def add(self, conn: Connection) -> None:
        self.conns[conn.id] = conn
        self.per_user[conn.session.principal.user] += 1
        self.metrics.connections_opened.inc()
        self.metrics.connections_changed()

    def remove(self, conn: Connection) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        user = conn.session.principal.user
        self.per_user[user] -= 1
        if self.per_user[user] <= 0:
            del self.per_user[user]
        self.metrics.connections_changed()
        for job in list(conn.session.jobs):
            self.unwatch_job(conn, job)
        if self.presence is not None:
            self.presence.forget(conn)
        for room in list(conn.session.rooms):
            self.unwatch_room(conn, room)
        if not self.conns and self._drained is not None:
            self._drained.set()
        coalesced = conn.coalesced_delta()
        if coalesced:
            self.metrics.coalesced.inc(coalesced)

    def watch_job(self, conn: Connection, job_id: str) -> None:
        if self.conns.get(conn.id) is not conn:
            return  # ended while its subscribe was read: routing tables keep no ended connection
        subs = self.by_job.get(job_id)
        if subs is None:
            subs = self.by_job[job_id] = set()
            if self.listening is not None:
                self.listening.job(job_id, True)
        if conn not in subs:
            subs.add(conn)
            self.metrics.job_subscriptions.inc()

    def unwatch_job(self, conn: Connection, job_id: str) -> None:
        subs = self.by_job.get(job_id)
        if subs is not None and conn in subs:
            subs.discard(conn)
            self.metrics.job_subscriptions.dec()
            if not subs:
                del self.by_job[job_id]
                if self.listening is not None:
                    self.listening.job(job_id, False)
                    # Unheard from now on: no routed entry would tell its cached copy is old.
                    self.snapshots.pop(job_id, None)

    async def heard(self, *, job_id: str | None = None, room: str | None = None) -> None:
        """Return once events of the job or room reach this process (at once with the stream
        feed; with notifications, when Redis has confirmed their channels).

        Raises:
            StreamUnavailable: not confirmed in time.
        """
        if self.listening is not None:
            await self.listening.heard(job_id=job_id, room=room)

    def _room_table(self, room: str) -> tuple[dict[str, set[Connection]], str]:
        kind, _, name = room.partition(":")
        return (self.by_user if kind == "user" else self.by_doc), name

    def watch_room(self, conn: Connection, room: str) -> None:
        if self.conns.get(conn.id) is not conn:
            return
        table, name = self._room_table(room)
        subs = table.get(name)
        if subs is None:
            subs = table[name] = set()
            if self.listening is not None:
                self.listening.room(room, True)
        if conn not in subs:
            subs.add(conn)
            self.metrics.room_subscriptions.inc()

    def unwatch_room(self, conn: Connection, room: str) -> None:
        table, name = self._room_table(room)
        subs = table.get(name)
        if subs is not None and conn in subs:
            subs.discard(conn)
            self.metrics.room_subscriptions.dec()
            if not subs:
                del table[name]
                if self.listening is not None:
                    self.listening.room(room, False)

    # -- routing -----------------------------------------------------------------------------

    def route(self, entries: list[FeedEntry], now: float | None = None) -> None:
        """Send each entry to every connection that may see it.

        With one entry (the live case at a few events per second), a connection with nothing
        queued whose socket takes data now gets the entry's shared frame bytes at once
        (:meth:`Connection.write_now`). Otherwise the entry is appended to the outbox, and
        each such connection is written once at the end (one batch frame per connection per
        call, rather than a syscall per event) through :meth:`Connection.flush`. No awaits,
        and no task switch for a socket that keeps up.
        """
        if self.listening is not None and self.listening.holding(entries):
            return  # routed after the gap being read back (see Listening)
        self.deliver(entries, now)

    def deliver(self, entries: list[FeedEntry], now: float | None = None) -> None:
        """:meth:`route` without asking whether entries are held (for the gap's reader)."""
        if now is None:
            now = time.monotonic()
        by_job = self.by_job
        rooms = bool(self.by_user or self.by_doc)
        got: set[Connection] = set()
        add = got.add
        written = 0
        oldest: float | None = None
        single = len(entries) == 1
        snapshots = self.snapshots
        for entry in entries:
            if snapshots:
                snapshots.pop(entry.job_id, None)
            recipients: Iterable[Connection] = by_job.get(entry.job_id) or ()
            if rooms:
                recipients = self._with_rooms(entry, recipients)
            n = written
            for conn in recipients:
                if single and conn.write_now(entry):
                    written += 1
                elif conn.session.deliver(entry, now):
                    add(conn)
            if written > n and (oldest is None or entry.ts < oldest):
                oldest = entry.ts
        if written:
            self.metrics.written(written, written, oldest)
        if got:
            self.flush(got)

    def _with_rooms(self, entry: FeedEntry, job_subs: Iterable[Connection]) -> Iterable[Connection]:
        """The job's subscribers plus those of its owner's and document's rooms, once each.

        A document room is shared by users: its members get the entry only if they may see
        the job (its owner or an admin).
        """
        owner, doc = self.meta.of_entry(entry)
        user_subs = self.by_user.get(owner) if owner else None
        doc_subs = self.by_doc.get(doc) if doc else None
        if user_subs is None and doc_subs is None:
            return job_subs
        seen = set(job_subs)
        seen.update(user_subs or ())
        for conn in doc_subs or ():
            if conn not in seen and conn.session.principal.may_watch(entry.job_id, owner):
                seen.add(conn)
        return seen

    def recipients_of(self, job_id: str) -> set[Connection]:
        """Every connection an entry of the job would reach (by id or through a room)."""
        owner, doc = self.meta.get(job_id) or (None, None)
        conns = set(self.by_job.get(job_id) or ())
        conns.update(self.by_user.get(owner) or () if owner else ())
        for conn in self.by_doc.get(doc) or () if doc else ():
            if conn.session.principal.may_watch(job_id, owner):
                conns.add(conn)
        return conns

    def flush(self, conns: Iterable[Connection]) -> None:
        """:meth:`Connection.flush` each connection; count what was written once, in sums."""
        frames = events = coalesced = 0
        oldest: float | None = None
        for conn in conns:
            result = conn.flush()
            coalesced += conn.coalesced_delta()
            if result is not None:
                frames += len(result.frames)
                if result.events:
                    events += result.events
                    ts = result.oldest_ts
                    if ts and (oldest is None or ts < oldest):
                        oldest = ts
        self.metrics.written(frames, events, oldest)
        if coalesced:
            self.metrics.coalesced.inc(coalesced)

    # -- what the hub knows of jobs -----------------------------------------------------------

    def known_owner(self, job_id: str) -> str | None:
        """The job's owner if the hub knows it (from its entries or an earlier read), else None."""
        cached = self.meta.get(job_id)
        if cached is not None and cached[0] is not None:
            return cached[0]
        snapshot = self.snapshots.get(job_id)
        return snapshot.owner if isinstance(snapshot, JobSnapshot) else None

    async def learn_meta(self, entries: list[FeedEntry]) -> None:
        """Fetch owner and document of jobs the entries do not name (one round trip), when
        rooms need them."""
        if self.by_user or self.by_doc:
            await self.learn_jobs(
                e.job_id for e in entries if e.owner is None and e.document_id is None
            )

    async def learn_jobs(self, job_ids: Iterable[str]) -> None:
        """Fetch owner and document of the jobs the hub does not know yet (one round trip)."""
        unknown = sorted({job for job in job_ids if job not in self.meta})
        if unknown:
            for job, (owner, doc) in (await self.store.job_meta_many(unknown)).items():
                self.meta.remember(job, owner, doc)

    # -- the background tasks ----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The reader answered recently and is not behind."""
        limit = self.settings.bridge_read_block_ms / 1000 + 5.0
        return self.started and not self.backlogged and time.monotonic() - self.reader_ok_at < limit

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        self._tasks = [
            asyncio.create_task(run_reader(self), name="pb-feed-reader"),
            asyncio.create_task(run_sweeper(self), name="pb-sweeper"),
        ]
        if self.presence is not None:
            self._tasks.append(asyncio.create_task(self.presence.run(self), name="pb-presence"))
        if self.position_check is not None:
            self._tasks.append(
                asyncio.create_task(self.position_check.run(), name="pb-position-check")
            )

    async def stop(self) -> None:
        """Close every connection with 1012 (so clients reconnect elsewhere), stop the tasks."""
        for conn in list(self.conns.values()):
            conn.session.close(CloseCode.RESTART, "server restarting")
            conn.flush()
        if self.conns:  # ASGI connections leave once their close is sent
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.settings.bridge_close_grace_s)
            self._drained = None
        if self.listening is not None:
            self.listening.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.started = False
