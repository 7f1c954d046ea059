"""One bridge process: its store, its hub and feed reader, its token authority and metrics —
and what a subscribe does (authorize, register live, read, answer).

The subscribe sequence keeps two promises of ``docs/protocol.md``: *authorize before register*
(no event of a job reaches a connection until its right to the job is established) and *register
before read* (the live subscription exists before history is read, so nothing falls between
the two; the session holds live entries until the answer is queued, then sends only those newer
than what the answer carried).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..access import Principal
from ..config import Settings
from ..events.records import Replay
from ..events.snapshot import JobSnapshot
from ..exceptions import FrameError, InvalidEvent, StoreRejected, StreamUnavailable
from ..store.aio import AsyncEventStore
from ..store.connect import bridge_store, feed_reader
from ..store.embedded import EmbeddedValkey
from ..store.presence import PresenceStore
from .connection import Connection
from .core import Ack, ErrorCode, Limits, Session, SubscribeJob, SubscribeRoom, Unsubscribe
from .core.frames import JobPresence
from .hub import Hub
from .metrics import BridgeMetrics
from .presence import PresenceTracker
from .tokens import TokenAuthority

__all__ = ["Bridge"]

log = logging.getLogger("progress_bridge.bridge")

#: Pooled Redis connections opened at start-up (a burst of subscribes uses this many at once).
WARM_CONNECTIONS = 16
#: How often a resume waits for a missing job to reappear is checked (seconds).
REAPPEAR_POLL_S = 0.2


class Bridge:
    """One process's bridge: the store, the hub, the token authority and the metrics."""

    def __init__(self, settings: Settings, authority: TokenAuthority | None = None) -> None:
        self.settings = settings
        self.authority = authority or TokenAuthority(settings)
        self.metrics = BridgeMetrics()
        self.limits = Limits.from_settings(settings)
        self._embedded: EmbeddedValkey | None = None
        self.store: AsyncEventStore | None = None
        self.hub: Hub | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect and start the feed reader (idempotent)."""
        async with self._lock:
            if self.hub is not None:
                return
            url = self.settings.redis_url
            if url is None:
                self._embedded = EmbeddedValkey().start()
                url = self._embedded.url
                log.warning("PROGRESS_REDIS_URL is not set: started an embedded valkey at %s", url)
            self.store = bridge_store(url, self.settings)
            self.hub = Hub(self.settings, feed_reader(url, self.settings), self.store, self.metrics)
            if self.settings.bridge_presence_interval_s > 0:
                ttl_ms = int(self.settings.bridge_presence_ttl_s * 1000)
                watchers = PresenceStore(self.store.client, self.store.keys, ttl_ms=ttl_ms)
                self.hub.presence = PresenceTracker(watchers, self.settings)
            await self.hub.start()
            await self._warm_pool()

    async def _warm_pool(self) -> None:
        """Open pooled Redis connections now, not in the first burst of subscribes.

        After a restart every client reconnects at once; each new redis-py connection costs
        several round trips and milliseconds of CPU (measured: the first 1,000 connects to a
        cold bridge had a p99 three times a warm one's). Best effort: a Redis that is down
        now is reported by ``/readyz``, and the pool connects later as usual.
        """
        assert self.store is not None
        n = min(WARM_CONNECTIONS, self.settings.bridge_redis_pool_size)
        results = await asyncio.gather(
            *(self.store.ping() for _ in range(n)), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("could not open Redis connections at start-up: %s", failed[0])

    async def stop(self) -> None:
        async with self._lock:
            if self.hub is not None:
                await self.hub.stop()
                await self.hub.reader.aclose()
                self.hub = None
            if self.store is not None:
                await self.store.aclose()
                self.store = None
            if self._embedded is not None:
                self._embedded.stop()
                self._embedded = None

    async def ready(self) -> tuple[bool, str]:
        if self.hub is None or self.store is None:
            return False, "not started"
        try:
            await self.store.ping()
        except (StreamUnavailable, StoreRejected) as exc:
            return False, str(exc)
        if not self.hub.ready:
            return False, "feed reader not caught up"
        return True, "ok"

    # -- subscribes ----------------------------------------------------------------------------

    def observe_ack(self, session: Session, op: Ack) -> None:
        sent = session.last_sent(op.job_id)
        if sent is None:
            return
        try:
            acked_ms = int(op.id.partition("-")[0])
        except ValueError:
            return
        self.metrics.ack_lag.observe(max(0.0, (sent[0] - acked_ms) / 1000))

    async def carry_out(
        self, conn: Connection, op: SubscribeJob | SubscribeRoom | Unsubscribe
    ) -> None:
        assert self.hub is not None
        session, hub = conn.session, self.hub
        now = time.monotonic
        if isinstance(op, Unsubscribe):
            if op.job_id is not None:
                hub.unwatch_job(conn, op.job_id)
                if hub.presence is not None:
                    hub.presence.leave(conn, op.job_id)
            elif op.room is not None:
                hub.unwatch_room(conn, op.room)
            session.unsubscribe(op, now())
            return
        try:
            session.check_subscribe(op)
        except FrameError as exc:
            session.error(exc.code, str(exc), exc.ref, now())
            self.metrics.errors.labels(exc.code).inc()
            return
        if (
            isinstance(op, SubscribeRoom)
            and op.kind == "user"
            and not session.principal.may_join_user_room(op.name)
        ):
            self.metrics.errors.labels(ErrorCode.FORBIDDEN).inc()
            session.error(ErrorCode.FORBIDDEN, f"room {op.room} is not yours", op.ref, now())
            return
        if isinstance(op, SubscribeJob):
            # Authorize before registering: until the connection's right to the job is
            # established, no event of the job may reach it (live, held or cached).
            try:
                code, message = await self.authorize_job(session.principal, op)
            except (StreamUnavailable, StoreRejected) as exc:
                code, message = ErrorCode.UNAVAILABLE, str(exc)
            if code is not None:
                self.metrics.errors.labels(code).inc()
                session.error(code, message, op.ref, now())
                return
        if not hub.primed.is_set():
            # Just started: history read now could miss what the feed reader will skip.
            try:
                await asyncio.wait_for(hub.primed.wait(), self.settings.bridge_redis_pool_timeout_s)
            except TimeoutError:
                self.metrics.errors.labels(ErrorCode.UNAVAILABLE).inc()
                session.error(ErrorCode.UNAVAILABLE, "the feed is not readable yet", op.ref, now())
                return
        # Register live first (entries are held by the session), then read, then answer.
        session.hold()
        if isinstance(op, SubscribeJob):
            registered = not session.watches_job(op.job_id)
            hub.watch_job(conn, op.job_id)
        else:
            registered = op.room not in session.rooms
            hub.watch_room(conn, op.room)
        try:
            # With per-job notifications, history is read only once they are heard.
            if isinstance(op, SubscribeJob):
                await hub.heard(job_id=op.job_id)
                code, message = await self._answer_job(conn, op)
            else:
                await hub.heard(room=op.room)
                code, message = await self._answer_room(conn, op)
        except (StreamUnavailable, StoreRejected) as exc:
            code, message = ErrorCode.UNAVAILABLE, str(exc)
        except Exception as exc:
            log.exception("subscribe failed", extra={"conn": conn.id})
            code, message = (
                ErrorCode.INTERNAL,
                f"the bridge failed to answer ({type(exc).__name__})",
            )
        if code is None:
            return
        if registered:
            if isinstance(op, SubscribeJob):
                hub.unwatch_job(conn, op.job_id)
            else:
                hub.unwatch_room(conn, op.room)
        self.metrics.errors.labels(code).inc()
        session.fail_subscribe(op, code, message, now())

    async def authorize_job(self, principal: Principal, op: SubscribeJob) -> tuple[str | None, str]:
        """None when ``principal`` may watch the job, else the error code and message.

        Admins and granted jobs need no read (whether the job exists is answered after
        registering, as before). Otherwise the owner comes from the hub's memory of the job
        (an owner, once recorded at publish, never changes) or from one HMGET — waiting a
        little for a job a resuming client knew (see :meth:`_reappeared`).
        """
        assert self.store is not None and self.hub is not None
        job_id = op.job_id
        if principal.admin or job_id in principal.jobs:
            return None, ""
        owner = self.hub.known_owner(job_id)
        if owner is None:
            meta = await self.store.job_meta(job_id)
            if meta is None and op.last_id is not None and await self._reappeared(job_id):
                meta = await self.store.job_meta(job_id)
            if meta is None:
                return ErrorCode.NOT_FOUND, f"no job {job_id}"
            owner, doc = meta
            if owner is not None:
                self.hub.meta.remember_read(job_id, owner, doc)
        if not principal.may_watch(job_id, owner):
            return ErrorCode.FORBIDDEN, f"job {job_id} is not yours"
        return None, ""

    async def _answer_job(self, conn: Connection, op: SubscribeJob) -> tuple[str | None, str]:
        """Read and queue the answer to a job subscribe; or the error code and message."""
        session = conn.session
        code, message, answer = await self._subscribe_job(session.principal, op)
        if code is not None:
            return code, message
        replay, snapshot = answer
        if replay is not None and replay.recovered:
            self.metrics.replayed.inc(len(replay.entries))
        presence = await self._join_presence(conn, op)
        session.finish_job(
            op, time.monotonic(), replay=replay, snapshot=snapshot, presence=presence
        )
        log.info(
            "subscribed",
            extra={
                "conn": conn.id,
                "job_id": op.job_id,
                "recovered": replay.recovered if replay else True,
                "reason": replay.reason if replay else "ok",
            },
        )
        return None, ""

    async def _join_presence(self, conn: Connection, op: SubscribeJob) -> dict[str, Any] | None:
        """Count the connection among the job's watchers; what its answer says about them (None
        when it did not ask, presence is off or Redis did not take it: the subscribe goes on
        without)."""
        assert self.hub is not None
        tracker = self.hub.presence
        if tracker is None:
            return None
        try:
            told = await tracker.join(conn, op.job_id, tell=op.presence)
        except (StreamUnavailable, StoreRejected) as exc:
            log.warning("presence: %s", exc, extra={"conn": conn.id})
            return None
        if self.hub.conns.get(conn.id) is not conn:  # closed meanwhile: it watches nothing
            tracker.forget(conn)
        return tracker.as_frame(told) if told is not None else None

    async def _answer_room(self, conn: Connection, op: SubscribeRoom) -> tuple[str | None, str]:
        """Read and queue the answer to a room subscribe; or the error code and message."""
        session = conn.session
        try:
            snapshots, replays = await self._subscribe_room(session.principal, op)
        except (StreamUnavailable, StoreRejected) as exc:
            return ErrorCode.UNAVAILABLE, str(exc)
        self.metrics.replayed.inc(sum(len(r.entries) for r in replays if r.recovered))
        session.finish_room(op, time.monotonic(), snapshots=snapshots, replays=replays)
        return None, ""

    async def _subscribe_job(
        self, principal: Principal, op: SubscribeJob
    ) -> tuple[str | None, str, tuple[Replay | None, JobSnapshot | None]]:
        assert self.store is not None
        none: tuple[Replay | None, JobSnapshot | None] = (None, None)
        try:
            if op.last_id is None:
                # A first subscribe: one HGETALL answers existence, ownership and the snapshot,
                # unless the hub holds the job's current snapshot already.
                snapshot = await self._first_snapshot(op.job_id)
                if snapshot is None:
                    return ErrorCode.NOT_FOUND, f"no job {op.job_id}", none
                if not principal.may_watch(op.job_id, snapshot.owner):
                    return ErrorCode.FORBIDDEN, f"job {op.job_id} is not yours", none
                return None, "", (None, snapshot)
            # (Authorized before registering: see carry_out.)
            replay = await self.store.replay(op.job_id, op.epoch, op.last_id)
            if replay.reason == "unknown_job" and await self._reappeared(op.job_id):
                replay = await self.store.replay(op.job_id, op.epoch, op.last_id)
        except InvalidEvent as exc:
            return ErrorCode.INVALID_POSITION, str(exc), none
        except (StreamUnavailable, StoreRejected) as exc:
            return ErrorCode.UNAVAILABLE, str(exc), none
        if replay.reason == "unknown_job" or (not replay.recovered and replay.snapshot is None):
            return ErrorCode.NOT_FOUND, f"no job {op.job_id}", none
        return None, "", (replay, None)

    async def _reappeared(self, job_id: str) -> bool:
        """Wait up to ``bridge_resume_wait_s`` for a job to exist again; True if it does.

        Why: a client resuming a job holds a position, so the job existed. If the store lost it
        (Redis restarted without persistence), its running producer writes it again within about
        a second, in a new epoch. Waiting that long answers the client ``recovered: false`` with
        the job's true state instead of ``not_found`` (which would make it give up). Polled,
        not routed: it works whatever feed design the bridge runs and only costs resumes that
        found nothing.

        Raises:
            StreamUnavailable, StoreRejected: Redis became unreachable meanwhile.
        """
        assert self.store is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.bridge_resume_wait_s
        while loop.time() < deadline:
            await asyncio.sleep(min(REAPPEAR_POLL_S, max(0.0, deadline - loop.time())))
            if await self.store.job_meta(job_id) is not None:
                return True
        return False

    async def _first_snapshot(self, job_id: str) -> JobSnapshot | None:
        """The job's snapshot for a subscriber registered live (see
        :meth:`~.caches.SnapshotCache.cached`)."""
        assert self.store is not None and self.hub is not None
        hub = self.hub
        snapshot = hub.snapshots.cached(job_id)
        if snapshot is not None:
            self.metrics.snapshot_reads.labels("cache").inc()
            return snapshot
        mark = hub.snapshots.start_read(job_id)
        snapshot = await self.store.snapshot(job_id)
        self.metrics.snapshot_reads.labels("redis").inc()
        if snapshot is not None:
            hub.snapshots.finish_read(job_id, mark, snapshot)
        return snapshot

    async def _subscribe_room(
        self, principal: Principal, op: SubscribeRoom
    ) -> tuple[list[JobSnapshot], list[Replay]]:
        assert self.store is not None
        snapshots: list[JobSnapshot] = []
        if op.kind == "user" and self.settings.bridge_room_jobs_limit:
            jobs = await self.store.jobs_of(op.name, self.settings.bridge_room_jobs_limit)
            jobs = [j for j in jobs if j not in op.positions]
            snapshots = [
                s
                for s in await self.store.snapshots(jobs)
                if s is not None and principal.may_watch(s.job_id, s.owner)
            ]
        replays: list[Replay] = []
        for job_id, (epoch, last_id) in op.positions.items():
            meta = await self.store.job_meta(job_id)
            if meta is None or not principal.may_watch(job_id, meta[0]):
                continue  # not this user's: say nothing about it
            replay = await self.store.replay(job_id, epoch, last_id)
            if replay.reason != "unknown_job":
                replays.append(replay)
        return snapshots, replays

    async def presence_of(self, job_id: str, *, admin: bool) -> JobPresence | None:
        """Who watches the job across every bridge (None when presence is off)."""
        if self.hub is None or self.hub.presence is None:
            return None
        return JobPresence(**await self.hub.presence.of(job_id, admin=admin))

    async def local_presence(self) -> dict[str, dict[str, Any]]:
        """Per job watched here: how many watch it across bridges, and who (the admin view)."""
        if self.hub is None or self.hub.presence is None:
            return {}
        return await self.hub.presence.watched_here()

    def connections(self) -> list[dict[str, Any]]:
        if self.hub is None:
            return []
        now = time.monotonic()
        return [c.describe(now) for c in self.hub.conns.values()]
