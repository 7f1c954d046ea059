"""Fan-out: one feed reader per process, routing live entries to connections' outboxes.

:class:`Hub` owns every connection of the process and three routing tables (by job, by
``user:`` room, by ``document:`` room). :meth:`Hub.run_reader` is the process's only Redis
reader: it tails every feed shard with ``XREAD BLOCK``, starting from each shard's newest id at
start-up and resuming from the last id it saw after a Redis hiccup (never from ``$`` again, so
nothing written during the hiccup is skipped — unless the feed was trimmed past it meanwhile;
subscribers then still recover by replay on their next subscribe). Each entry becomes one
:class:`~progress_bridge.protocol.FeedEntry` shared by every recipient; routing only appends to
outboxes, with no await per delivery; then each connection that got frames and whose writer is
idle is written to at once, from the reader (:meth:`Connection.flush`: the ASGI ``send``
coroutine is driven by hand and, with a socket that keeps up, completes without suspending —
no task switch, no await). Only a send that suspends (the socket is paused for flow control)
is handed to the connection's own writer task, which finishes it and writes what queued
meanwhile, so a slow socket only ever delays itself.

Ceiling of this design (DESIGN.md option (a), sharded feed streams tailed by every bridge):
every bridge reads and parses every event of every job, whether or not it has subscribers for
it. Measured in-process on the 2-core dev machine (while other test suites ran): parsing one
feed entry (``FeedEntry``: one ``json.loads``) costs about 4-11 us, and routing plus batching
one delivery about 2-5 us; redis-py's reply parsing adds a few more per entry. So one bridge
process should top out on the order of 50k feed events/s (an estimate from these figures, not a
measurement), and the fleet's event rate is bounded by that figure whatever the number of
bridges (adding bridges adds sockets, not event throughput). Past that point, move to option
(b): each bridge subscribes (sharded pub/sub on Cluster) only to the jobs its clients watch —
``Hub.watch_job``/``unwatch_job`` are the hooks — and fills gaps from the job stream by id, as
a subscribe already does. End-to-end figures are recorded by ``bench/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ._direct import DirectWriter, ws_frame
from .config import Settings
from .keys import KeySpace
from .metrics import BridgeMetrics
from .protocol import CloseCode, FeedEntry, Principal, Session, TakeResult
from .snapshot import JobSnapshot

__all__ = ["Connection", "Hub"]

log = logging.getLogger("progress_bridge.fanout")

#: Jobs whose owner and document the hub remembers (for room routing).
META_CACHE_SIZE = 100_000
#: Jobs whose latest snapshot the hub keeps for first subscribes (see :meth:`Hub.cached_snapshot`).
SNAPSHOT_CACHE_SIZE = 1_000
#: How often connections are checked for heartbeats and stalled outboxes (seconds).
SWEEP_INTERVAL_S = 0.5
#: ...in this many slices, spread over the interval.
SWEEP_SLICES = 10

#: Writes one frame. Must return a coroutine (``async def``): :meth:`Connection.flush` drives
#: it by hand, so that a send that does not suspend costs no task switch.
Send = Callable[[str | bytes], Coroutine[Any, Any, None]]
Close = Callable[[int, str], Awaitable[None]]

#: A send that suspended in :meth:`Connection.flush`: the coroutine, what it yielded, the frames
#: still to write after it, and what the whole take carried (for metrics).
_Handoff = tuple[Coroutine[Any, Any, None], Any, list[str | bytes], TakeResult]


async def _finish_send(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Run a send coroutine that suspended in another task to its end, as a Task would.

    ``yielded`` is what the coroutine yielded: a future it waits for (or None, a bare yield).
    Wait for that future without consuming its outcome, then resume the coroutine, whose own
    ``await`` reads the result or raises the future's exception inside it. If the writer is
    cancelled meanwhile, the cancellation is thrown into the coroutine so it cleans up.
    """
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            elif getattr(yielded, "_asyncio_future_blocking", None) is not None:
                yielded._asyncio_future_blocking = False  # what Task.__step does
                await asyncio.wait((yielded,))
            else:
                coro.close()
                raise RuntimeError(f"send coroutine yielded {yielded!r}, not a future")
        except asyncio.CancelledError:
            if isinstance(yielded, asyncio.Future):
                yielded.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                coro.throw(asyncio.CancelledError())
            coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration:
            return


class _PendingRead:
    """Marks a job whose snapshot is being read (see :meth:`Hub.reading_snapshot`)."""

    __slots__ = ()


class Connection:
    """The I/O side of one socket: its :class:`Session`, writer task and end signal."""

    _next_id = 0

    def __init__(
        self,
        session: Session,
        send: Send,
        close: Close,
        *,
        remote: str = "",
        metrics: BridgeMetrics | None = None,
        close_grace_s: float = 5.0,
        close_linger_s: float = 60.0,
        direct: DirectWriter | None = None,
    ) -> None:
        Connection._next_id += 1
        self.id = Connection._next_id
        self.session = session
        self.remote = remote
        self.opened_at = time.time()
        self._send = send
        self._close = close
        #: Writes pre-built frame bytes to the socket when it can take them now (None: every
        #: frame goes through ``send``).
        self.direct = direct
        self._metrics = metrics
        self._grace = close_grace_s
        #: How long a close frame may wait for a stalled socket to drain before it is dropped.
        self.linger = close_linger_s
        self._counted = False
        self._coalesced_reported = 0
        self._wake = asyncio.Event()
        self._wake.set()  # the hello frame is queued
        #: Set while frames taken from the session are not all written (by the writer, or by a
        #: send that suspended in :meth:`flush`): nothing else may be written then.
        self.sending_since: float | None = None
        self._handoff: _Handoff | None = None
        self._broken = False
        #: Times the writer task woke up (the fast path does not wake it).
        self.wakeups = 0
        self._close_seen: float | None = None
        #: Resolved when the connection must end (closed by us, or the writer failed).
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writer = asyncio.create_task(self._run_writer(), name=f"pb-writer-{self.id}")

    def wake(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def flush(self) -> TakeResult | None:
        """Write what the session has queued now, from the calling task (the fast path).

        Only when the writer is idle — not between a take and the end of its writes, no
        suspended send pending, not closing; otherwise the writer is woken, as before. Each
        frame's send coroutine is driven by hand: one that completes without suspending (the
        socket is writable) costs no task switch and no await. The first one that suspends
        is handed, half-run, to the writer task, which finishes it, then writes the rest of
        the take, then anything queued meanwhile — so frames leave in outbox order. Returns
        what was written here to the end (for the caller's metrics), else None.
        """
        session = self.session
        if (
            self.sending_since is not None
            or session.close_code is not None
            or self._broken
            or self.done.done()
        ):
            self.wake()
            return None
        direct = self.direct
        if direct is not None and direct.ready():
            # One event: the same bytes for every session of this format. Anything else is
            # framed here. The transport buffers what the socket does not take at once, and
            # pauses this path (ready() turns False) past its high-water mark.
            result = session.take()
            try:
                if result.single is not None:
                    direct.write(result.single.wire_frame(session.format, direct.deflate_bits))
                else:
                    for frame in result.frames:
                        direct.write(ws_frame(frame, direct.deflate_bits))
            except Exception as exc:
                self._direct_failed(exc)
                return None
            return result if result.frames else None
        result = session.take()
        frames = result.frames
        send = self._send
        for i in range(len(frames)):
            coro = send(frames[i])
            try:
                yielded = coro.send(None)
            except StopIteration:
                continue
            except Exception as exc:  # the peer went away mid-send: the writer ends quietly
                log.debug("inline send failed: %r", exc, extra={"conn": self.id})
                self._broken = True
                self.wake()
                return None
            # Not writable now: the writer task takes over from here.
            self._handoff = (coro, yielded, frames[i + 1 :], result)
            self.sending_since = time.monotonic()
            self.wake()
            return None
        return result if frames else None

    def write_now(self, entry: FeedEntry) -> bool:
        """The live fast path for one entry: its shared frame bytes written to the socket now.

        Only with a direct writer whose socket takes data now, and when nothing of this
        connection is queued or being written; True if written (the session marked it sent),
        False if the caller must :meth:`Session.deliver` it instead.
        """
        direct = self.direct
        if (
            direct is None
            or self.sending_since is not None
            or self._broken
            or not direct.ready()
            or not self.session.deliver_now(entry)
        ):
            return False
        try:
            direct.write(entry.wire_frame(self.session.format, direct.deflate_bits))
        except Exception as exc:
            self._direct_failed(exc)
        return True

    def _direct_failed(self, exc: Exception) -> None:
        """The transport is gone: the writer ends quietly, as after a failed inline send."""
        log.debug("direct write failed: %r", exc, extra={"conn": self.id})
        self._broken = True
        self.wake()

    def coalesced_delta(self) -> int:
        """Updates the session coalesced since the last call (or report), marked reported."""
        delta = self.session.coalesced - self._coalesced_reported
        self._coalesced_reported += delta
        return delta

    def poke(self, now: float) -> None:
        """Called by the sweeper once the session decided to close: wake the writer so it
        sends the close frame. A writer still stuck in a send after the grace (a stalled peer
        that does not drain its socket) is detached: :attr:`done` resolves, so the connection
        leaves the hub and its limits, while the writer lingers (up to :attr:`linger`) to send
        the close frame should the peer read again."""
        if self.session.close_code is None or self.done.done():
            return
        self.count_close()
        if self._close_seen is None:
            self._close_seen = now
        if self.sending_since is None:
            self.wake()
        elif now - self._close_seen > self._grace:
            self._finish()

    def report_coalesced(self) -> None:
        """Add the session's coalesced updates since the last report to the metric."""
        delta = self.session.coalesced - self._coalesced_reported
        if delta and self._metrics is not None:
            self._coalesced_reported += delta
            self._metrics.coalesced.inc(delta)

    def count_close(self) -> None:
        """Count the decided close once, when it is decided (not when the frame gets out)."""
        code = self.session.close_code
        if self._counted or code is None:
            return
        self._counted = True
        if self._metrics is not None:
            self._metrics.closed.labels(str(code)).inc()
            if code == CloseCode.SLOW_CONSUMER:
                self._metrics.closed_slow.inc()
        log.info(
            "closing connection",
            extra={
                "conn": self.id,
                "user": self.session.principal.user,
                "code": code,
                "reason": self.session.close_reason,
            },
        )

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    async def _run_writer(self) -> None:
        session, metrics = self.session, self._metrics
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self.wakeups += 1
                if self._broken:
                    return  # an inline send found the peer gone
                handoff, self._handoff = self._handoff, None
                if handoff is not None:
                    # A send that suspended in flush(): finish it first (sending_since is set).
                    coro, yielded, frames, result = handoff
                    await _finish_send(coro, yielded)
                else:
                    if session.close_code is not None:
                        break
                    result = session.take()
                    if session.coalesced != self._coalesced_reported:
                        self.report_coalesced()
                    frames = result.frames
                    if not frames:
                        continue
                    self.sending_since = time.monotonic()
                for frame in frames:
                    if session.close_code is not None:
                        break
                    await self._send(frame)
                self.sending_since = None
                if session.close_code is not None:
                    break
                if metrics is not None:
                    metrics.frames_sent.inc(len(result.frames))
                    if result.events:
                        metrics.events_relayed.inc(result.events)
                        if result.oldest_ts:
                            metrics.event_age.observe(max(0.0, time.time() - result.oldest_ts))
            self.count_close()
            code = session.close_code
            assert code is not None
            # The close frame waits behind whatever the socket has not drained yet.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._close(code, session.close_reason), self.linger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-send: end quietly
            log.debug("writer ended: %r", exc, extra={"conn": self.id})
        finally:
            if self._handoff is not None:  # cancelled before it could finish the send
                self._handoff[0].close()
                self._handoff = None
            self.sending_since = None
            self._finish()

    def describe(self, now: float) -> dict[str, Any]:
        s = self.session
        return {
            "id": self.id,
            "user": s.principal.user,
            "admin": s.principal.admin,
            "remote": self.remote,
            "format": s.format.value,
            "connected_s": round(time.time() - self.opened_at, 3),
            "jobs": sorted(s.jobs),
            "rooms": sorted(s.rooms),
            "outbox_depth": s.outbox_depth,
            "outbox_bytes": s.outbox_bytes,
            "outbox_age_s": round(s.outbox_age(now), 3),
            "acks": dict(s.acks),
            "coalesced": s.coalesced,
            "closing": s.close_code,
        }


class Hub:
    """Every connection of one process and the single feed reader that serves them."""

    def __init__(
        self,
        settings: Settings,
        reader_client: aioredis.Redis,
        metrics: BridgeMetrics,
    ) -> None:
        self.settings = settings
        self.keys = KeySpace(settings.key_prefix, settings.feed_shards)
        self.client = reader_client
        self.metrics = metrics
        self.conns: dict[int, Connection] = {}
        self.per_user: Counter[str] = Counter()
        self.by_job: dict[str, set[Connection]] = {}
        self.by_user: dict[str, set[Connection]] = {}
        self.by_doc: dict[str, set[Connection]] = {}
        self.meta: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        #: job → its snapshot as of the last entry routed for it, or the mark of reads in flight.
        self.snapshots: OrderedDict[str, JobSnapshot | _PendingRead] = OrderedDict()
        self.positions: dict[str, str] = {}
        self.started = False
        self.reader_ok_at = 0.0
        self.backlogged = True
        self._tasks: list[asyncio.Task[None]] = []
        metrics.sample_outboxes(lambda: [c.session.outbox_depth for c in self.conns.values()])

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
        self.metrics.connections.set(len(self.conns))
        self.metrics.connections_opened.inc()

    def remove(self, conn: Connection) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        user = conn.session.principal.user
        self.per_user[user] -= 1
        if self.per_user[user] <= 0:
            del self.per_user[user]
        for job in list(conn.session.jobs):
            self.unwatch_job(conn, job)
        for room in list(conn.session.rooms):
            self.unwatch_room(conn, room)
        self.metrics.connections.set(len(self.conns))
        conn.report_coalesced()

    def watch_job(self, conn: Connection, job_id: str) -> None:
        subs = self.by_job.setdefault(job_id, set())
        if conn not in subs:
            subs.add(conn)
            self.metrics.subscriptions.labels("job").inc()

    def unwatch_job(self, conn: Connection, job_id: str) -> None:
        subs = self.by_job.get(job_id)
        if subs is not None and conn in subs:
            subs.discard(conn)
            self.metrics.subscriptions.labels("job").dec()
            if not subs:
                del self.by_job[job_id]

    def _room_table(self, room: str) -> tuple[dict[str, set[Connection]], str]:
        kind, _, name = room.partition(":")
        return (self.by_user if kind == "user" else self.by_doc), name

    def watch_room(self, conn: Connection, room: str) -> None:
        table, name = self._room_table(room)
        subs = table.setdefault(name, set())
        if conn not in subs:
            subs.add(conn)
            self.metrics.subscriptions.labels("room").inc()

    def unwatch_room(self, conn: Connection, room: str) -> None:
        table, name = self._room_table(room)
        subs = table.get(name)
        if subs is not None and conn in subs:
            subs.discard(conn)
            self.metrics.subscriptions.labels("room").dec()
            if not subs:
                del table[name]

    # -- snapshots for first subscribes --------------------------------------------------------

    def cached_snapshot(self, job_id: str) -> JobSnapshot | None:
        """The job's snapshot if no entry of the job was routed since it was read, else None.

        Why it is safe to answer a subscribe with it: the subscriber registered live before
        asking, so every entry routed from now on reaches it (held, then sent if newer than the
        snapshot's ``last_id``); and any entry appended after the snapshot was read is routed
        only after this call, since routing one drops the cached copy. A herd of clients
        subscribing to one job (a reconnect storm after a bridge restart) costs one read.
        """
        snapshot = self.snapshots.get(job_id)
        if isinstance(snapshot, JobSnapshot):
            self.snapshots.move_to_end(job_id)
            return snapshot
        return None

    def reading_snapshot(self, job_id: str) -> _PendingRead:
        """Note that a snapshot read starts now; pass the mark to :meth:`read_snapshot`.

        Routing an entry of the job drops the mark, so a read that may predate that entry is
        not kept — not even when another read marks the job again before it returns.
        """
        mark = self.snapshots.get(job_id)
        if not isinstance(mark, _PendingRead):  # none yet (or gone): reads from now on
            mark = self.snapshots[job_id] = _PendingRead()
            if len(self.snapshots) > SNAPSHOT_CACHE_SIZE:
                self.snapshots.popitem(last=False)
        return mark

    def read_snapshot(self, job_id: str, mark: _PendingRead, snapshot: JobSnapshot) -> None:
        """Keep a snapshot read since ``mark`` was taken if nothing was routed for it since."""
        if self.snapshots.get(job_id) is mark:
            self.snapshots[job_id] = snapshot

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
            metrics = self.metrics
            metrics.frames_sent.inc(written)
            metrics.events_relayed.inc(written)
            if oldest:
                metrics.event_age.observe(max(0.0, time.time() - oldest))
        if got:
            self.flush(got)

    def _with_rooms(self, entry: FeedEntry, job_subs: Iterable[Connection]) -> Iterable[Connection]:
        """The job's subscribers plus those of its owner's and document's rooms, once each.

        A document room is shared by users: its members get the entry only if they may see
        the job (its owner or an admin).
        """
        owner, doc = self._meta_of(entry)
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
        metrics = self.metrics
        if frames:
            metrics.frames_sent.inc(frames)
        if events:
            metrics.events_relayed.inc(events)
        if oldest is not None:
            metrics.event_age.observe(max(0.0, time.time() - oldest))
        if coalesced:
            metrics.coalesced.inc(coalesced)

    def _meta_of(self, entry: FeedEntry) -> tuple[str | None, str | None]:
        cached = self.meta.get(entry.job_id)
        if entry.owner is not None or entry.document_id is not None:
            owner = entry.owner or (cached[0] if cached else None)
            doc = entry.document_id or (cached[1] if cached else None)
            if cached != (owner, doc):
                self._remember(entry.job_id, owner, doc)
            return owner, doc
        return cached or (None, None)

    def known_owner(self, job_id: str) -> str | None:
        """The job's owner if the hub knows it (from its entries or an earlier read), else None."""
        cached = self.meta.get(job_id)
        if cached is not None and cached[0] is not None:
            return cached[0]
        snapshot = self.snapshots.get(job_id)
        return snapshot.owner if isinstance(snapshot, JobSnapshot) else None

    def remember_meta(self, job_id: str, owner: str, doc: str | None) -> None:
        """Record a job's owner and document read from its snapshot."""
        cached = self.meta.get(job_id)
        self._remember(job_id, owner, doc or (cached[1] if cached else None))

    def _remember(self, job_id: str, owner: str | None, doc: str | None) -> None:
        self.meta[job_id] = (owner, doc)
        if len(self.meta) > META_CACHE_SIZE:
            self.meta.popitem(last=False)

    async def _learn_meta(self, entries: list[FeedEntry]) -> None:
        """Fetch owner and document of jobs the entries do not name (one round trip)."""
        unknown = sorted(
            {
                e.job_id
                for e in entries
                if e.owner is None and e.document_id is None and e.job_id not in self.meta
            }
        )
        if not unknown:
            return
        pipe = self.client.pipeline(transaction=False)
        for job in unknown:
            pipe.hmget(self.keys.snapshot(job), ["owner", "document_id"])
        for job, (owner, doc) in zip(unknown, await pipe.execute(), strict=True):
            self._remember(
                job,
                json.loads(owner) if owner else None,
                json.loads(doc) if doc else None,
            )

    # -- the reader --------------------------------------------------------------------------

    async def _start_positions(self) -> dict[str, str]:
        """Each feed's newest id now (``0-0`` for a feed that does not exist yet)."""
        pipe = self.client.pipeline(transaction=False)
        feeds = self.keys.all_feeds()
        for feed in feeds:
            pipe.xinfo_stream(feed)
        out: dict[str, str] = {}
        for feed, info in zip(feeds, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(info, ResponseError):
                out[feed] = "0-0"
            elif isinstance(info, Exception):
                raise info
            else:
                out[feed] = str(info["last-generated-id"])
        return out

    async def run_reader(self) -> None:
        """Tail every feed shard until cancelled; survive Redis hiccups by resuming."""
        s = self.settings
        delay = 0.05
        while True:
            try:
                if not self.positions:
                    self.positions = await self._start_positions()
                    log.info("feed reader started", extra={"shards": len(self.positions)})
                reply: Any = await self.client.xread(
                    self.positions,  # type: ignore[arg-type]
                    count=s.bridge_read_count,
                    block=s.bridge_read_block_ms,
                )
                self.reader_ok_at = time.monotonic()
                delay = 0.05
                total = 0
                backlogged = False
                batch: list[FeedEntry] = []
                for feed, rows in reply or ():
                    for entry_id, fields in rows:
                        self.positions[feed] = entry_id
                        try:
                            batch.append(
                                FeedEntry(fields["j"], fields["i"], fields["p"], fields["e"])
                            )
                        except (KeyError, ValueError) as exc:
                            log.warning("skipping malformed feed entry %s: %r", entry_id, exc)
                    total += len(rows)
                    backlogged = backlogged or len(rows) >= s.bridge_read_count
                self.backlogged = backlogged
                if batch:
                    self.metrics.feed_entries.inc(total)
                    if self.by_user or self.by_doc:
                        await self._learn_meta(batch)
                    self.route(batch)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.snapshots.clear()  # entries may be appended that no one routes for a while
                self.metrics.reader_errors.inc()
                log.warning("feed reader: %r; retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                self.snapshots.clear()
                self.metrics.reader_errors.inc()
                log.exception("feed reader failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def run_sweeper(self) -> None:
        """Heartbeats, dead peers and stalled outboxes: every connection once per interval.

        In :data:`SWEEP_SLICES` slices spread over the interval, not all at once: a pass
        costs ~1 µs per connection (10 ms at 10,000 connections on the dev VM), and a live
        event arriving during one waits for it to end.
        """
        pause = SWEEP_INTERVAL_S / SWEEP_SLICES
        while True:
            conns = list(self.conns.values())
            for part in range(SWEEP_SLICES):
                await asyncio.sleep(pause)
                now = time.monotonic()
                ticked: list[Connection] = []
                live = self.conns
                for conn in conns[part::SWEEP_SLICES]:
                    if live.get(conn.id) is not conn:
                        continue  # gone since the round began
                    if conn.session.tick(now):
                        ticked.append(conn)
                    conn.poke(now)
                if ticked:
                    self.flush(ticked)  # pings written inline; a decided close wakes the writer

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
            asyncio.create_task(self.run_reader(), name="pb-feed-reader"),
            asyncio.create_task(self.run_sweeper(), name="pb-sweeper"),
        ]

    async def stop(self) -> None:
        """Close every connection with 1012 (so clients reconnect elsewhere), stop the tasks."""
        for conn in list(self.conns.values()):
            conn.session.close(CloseCode.RESTART, "server restarting")
            conn.wake()
        if self.conns:
            await asyncio.wait(
                [c.done for c in self.conns.values()], timeout=self.settings.bridge_close_grace_s
            )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.started = False
