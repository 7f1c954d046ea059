"""The bridge as FastAPI routes: ``/ws``, job snapshots, health, metrics, an admin view.

``create_router(settings)`` returns an :class:`fastapi.APIRouter` any FastAPI app can include;
its lifespan (merged into the app's by ``include_router``) starts the process's one feed reader
and, at shutdown, closes every client with 1012. ``create_app(settings)`` is the smallest app
around it (what ``progress-bridge serve`` runs when the demo app is not installed).

Routes (the WebSocket protocol is ``docs/protocol.md``):

- ``GET /ws`` — WebSocket: token as the ``token.<JWT>`` subprotocol or ``?token=``.
- ``GET /api/jobs/{job_id}`` — the job's snapshot with its ``epoch`` and ``last_id`` (Bearer).
- ``GET /healthz`` — the process is up. ``GET /readyz`` — Redis answers and the reader is current.
- ``GET /metrics`` — Prometheus. ``GET /api/admin/connections`` — live connections (admin).

The endpoint is a short loop around the sans-I/O :class:`~progress_bridge.protocol.Session`:
feed it client frames, carry out the subscribes it returns (Redis reads), and let the
connection write what it queues (:meth:`~progress_bridge.fanout.Connection.flush`: at once
when the socket keeps up, else through the connection's writer task).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.types import Message

from ._direct import DirectWriter
from .auth import STATE_KEY, AuthError, CurrentUser, TokenAuthority, origin_allowed
from .config import Settings
from .embedded import EmbeddedValkey
from .exceptions import InvalidEvent
from .fanout import Connection, Hub
from .metrics import BridgeMetrics
from .protocol import (
    Ack,
    CloseCode,
    FrameError,
    Limits,
    Pong,
    Principal,
    Session,
    SubscribeJob,
    SubscribeRoom,
    Unsubscribe,
    negotiate,
)
from .snapshot import JobSnapshot
from .streams import AsyncEventStore, Replay

__all__ = ["Bridge", "create_app", "create_router"]

log = logging.getLogger("progress_bridge.bridge")


def limits_from(settings: Settings) -> Limits:
    return Limits(
        heartbeat_s=settings.bridge_heartbeat_s,
        max_frame_bytes=settings.bridge_max_frame_bytes,
        max_subscriptions=settings.bridge_max_subscriptions,
        rate_per_s=settings.bridge_rate_per_s,
        rate_burst=settings.bridge_rate_burst,
        rate_strikes=settings.bridge_rate_strikes,
        outbox_max_frames=settings.bridge_outbox_max_frames,
        outbox_max_bytes=settings.bridge_outbox_max_bytes,
        outbox_max_age_s=settings.bridge_outbox_max_age_s,
        batch_max_events=settings.bridge_batch_max_events,
    )


def _raw_send(ws: WebSocket) -> Callable[[Message], Awaitable[None]]:
    """The ASGI ``send`` under Starlette's exception-handler ``sender`` wrappers of ``ws``.

    Those wrappers only note ``http.response.start`` and pass every message on; a per-frame
    call through them costs a coroutine each. Anything else is left as found.
    """
    send: Any = ws._send
    for _ in range(8):
        code = getattr(send, "__code__", None)
        if (
            code is None
            or not getattr(send, "__qualname__", "").endswith("wrapped_app.<locals>.sender")
            or "send" not in code.co_freevars
            or send.__closure__ is None
        ):
            break
        send = send.__closure__[code.co_freevars.index("send")].cell_contents
    return cast(Callable[[Message], Awaitable[None]], send)


#: Pooled Redis connections opened at start-up (a burst of subscribes uses this many at once).
WARM_CONNECTIONS = 16


class Bridge:
    """One process's bridge: Redis clients, the hub, the token authority and the metrics."""

    def __init__(self, settings: Settings, authority: TokenAuthority | None = None) -> None:
        self.settings = settings
        self.authority = authority or TokenAuthority(settings)
        self.metrics = BridgeMetrics()
        self.limits = limits_from(settings)
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
            # A blocking pool: a burst of subscribes (a reconnect storm) queues for a connection
            # instead of failing with "too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                decode_responses=True,
                max_connections=self.settings.bridge_redis_pool_size,
                timeout=self.settings.bridge_redis_pool_timeout_s,
            )
            self.store = AsyncEventStore(aioredis.Redis.from_pool(pool), self.settings)
            # The reader blocks in XREAD: its socket must wait longer than redis-py's 5 s default.
            reader = aioredis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=self.settings.bridge_read_block_ms / 1000 + 10,
            )
            self.hub = Hub(self.settings, reader, self.metrics)
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
            *(self.store.client.ping() for _ in range(n)), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("could not open Redis connections at start-up: %r", failed[0])

    async def stop(self) -> None:
        async with self._lock:
            if self.hub is not None:
                await self.hub.stop()
                await self.hub.client.aclose()
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
            await self.store.client.ping()
        except (RedisError, OSError) as exc:
            return False, f"redis unreachable: {exc!r}"
        if not self.hub.ready:
            return False, "feed reader not caught up"
        return True, "ok"

    # -- job access ----------------------------------------------------------------------------

    async def job_owner(self, job_id: str) -> tuple[bool, str | None]:
        """Whether the job exists, and its owner (one HMGET, not the whole snapshot)."""
        assert self.store is not None
        epoch, owner = await self.store.client.hmget(
            self.store.keys.snapshot(job_id), ["epoch", "owner"]
        )
        return epoch is not None, json.loads(owner) if owner else None

    async def snapshots(self, job_ids: list[str]) -> list[JobSnapshot]:
        assert self.store is not None
        pipe = self.store.client.pipeline(transaction=False)
        for job in job_ids:
            pipe.hgetall(self.store.keys.snapshot(job))
        out = []
        for job, raw in zip(job_ids, await pipe.execute(), strict=True):
            if raw.get("epoch"):
                out.append(JobSnapshot.from_hash(job, raw))
        return out

    # -- the WebSocket endpoint ------------------------------------------------------------------

    async def serve_websocket(self, ws: WebSocket) -> None:
        await self.start()
        assert self.hub is not None
        hub = self.hub
        headers = ws.headers
        secure = ws.url.scheme == "wss"
        if not origin_allowed(
            headers.get("origin"), headers.get("host"), secure, self.settings.allowed_origins
        ):
            log.info("refused cross-site handshake", extra={"origin": headers.get("origin")})
            hub.metrics.closed.labels("403").inc()
            await ws.close(code=CloseCode.FORBIDDEN)  # before accept: HTTP 403
            return
        fmt, echo, token = negotiate(ws.scope.get("subprotocols", []))
        token = token or ws.query_params.get("token")
        await ws.accept(subprotocol=echo)
        try:
            principal = self.authority.verify(token)
        except AuthError as exc:
            hub.metrics.closed.labels(str(int(CloseCode.UNAUTHENTICATED))).inc()
            await ws.close(code=CloseCode.UNAUTHENTICATED, reason=str(exc)[:120])
            return
        refused = hub.admit(principal)
        if refused is not None:
            hub.metrics.closed.labels(str(int(refused[0]))).inc()
            await ws.close(code=refused[0], reason=refused[1])
            return

        session = Session(principal, fmt, self.limits, time.monotonic())

        # Frames go to the server's own ASGI send, past Starlette's per-message layers
        # (``WebSocket.send``'s state checks, the exception handler's ``sender``): the socket
        # is accepted, only this connection's frames and its close (through ``ws.close``)
        # are sent, and a gone peer raises from the raw send as from the wrapper (OSError).
        raw_send = _raw_send(ws)

        async def send(frame: str | bytes) -> None:
            if frame.__class__ is str:
                await raw_send({"type": "websocket.send", "text": frame})
            else:
                await raw_send({"type": "websocket.send", "bytes": frame})

        async def close(code: int, reason: str) -> None:
            await ws.close(code=code, reason=reason)

        client = ws.client
        conn = Connection(
            session,
            send,
            close,
            remote=f"{client.host}:{client.port}" if client else "",
            metrics=hub.metrics,
            close_grace_s=self.settings.bridge_close_grace_s,
            close_linger_s=self.settings.bridge_close_linger_s,
            direct=DirectWriter.attach(raw_send),
        )
        hub.add(conn)
        log.info(
            "connection opened",
            extra={"conn": conn.id, "user": principal.user, "format": fmt.value},
        )
        receiving: asyncio.Task[Any] | None = None
        peer_gone = False
        try:
            while not conn.done.done():
                if receiving is None:
                    receiving = asyncio.ensure_future(ws.receive())
                await asyncio.wait({receiving, conn.done}, return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    break
                message = receiving.result()
                receiving = None
                if message["type"] == "websocket.disconnect":
                    peer_gone = True  # or the server is shutting down: nothing to linger for
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                op = session.receive(data, time.monotonic())
                if session.outbox_depth or session.close_code is not None:
                    hub.flush((conn,))  # an error frame or a close: written or handed over
                if isinstance(op, Ack):
                    self._observe_ack(session, op)
                    continue
                if op is None or isinstance(op, Pong):
                    continue
                await self._carry_out(conn, op)
                hub.flush((conn,))  # the answer, written here unless the writer is busy
        except Exception:
            log.exception("connection failed", extra={"conn": conn.id})
            session.close(CloseCode.INTERNAL, "internal error")
            conn.wake()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(
                    asyncio.shield(conn.done), self.settings.bridge_close_grace_s
                )
        finally:
            if receiving is not None:
                receiving.cancel()
            hub.remove(conn)
            if not conn.writer.done() and session.close_code is not None and not peer_gone:
                # Closing: let the writer get the close frame out (to a stalled reader too,
                # should it read again), within the linger bound.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(conn.writer), conn.linger)
            if not conn.writer.done():
                conn.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.writer
            log.info(
                "connection closed",
                extra={"conn": conn.id, "user": principal.user, "code": session.close_code},
            )

    def _observe_ack(self, session: Session, op: Ack) -> None:
        sent = session.last_sent(op.job_id)
        if sent is None:
            return
        try:
            acked_ms = int(op.id.partition("-")[0])
        except ValueError:
            return
        self.metrics.ack_lag.observe(max(0.0, (sent[0] - acked_ms) / 1000))

    async def _carry_out(
        self, conn: Connection, op: SubscribeJob | SubscribeRoom | Unsubscribe
    ) -> None:
        assert self.hub is not None
        session, hub = conn.session, self.hub
        now = time.monotonic
        if isinstance(op, Unsubscribe):
            if op.job_id is not None:
                hub.unwatch_job(conn, op.job_id)
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
            self.metrics.errors.labels("forbidden").inc()
            session.error("forbidden", f"room {op.room} is not yours", op.ref, now())
            return
        if isinstance(op, SubscribeJob):
            # Authorize before registering: until the connection's right to the job is
            # established, no event of the job may reach it (live, held or cached).
            code, message = await self._authorize_job(session.principal, op.job_id)
            if code is not None:
                self.metrics.errors.labels(code).inc()
                session.error(code, message, op.ref, now())
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
            if isinstance(op, SubscribeJob):
                code, message = await self._answer_job(conn, op)
            else:
                code, message = await self._answer_room(conn, op)
        except Exception as exc:
            log.exception("subscribe failed", extra={"conn": conn.id})
            code, message = "internal", f"the bridge failed to answer ({type(exc).__name__})"
        if code is None:
            return
        if registered:
            if isinstance(op, SubscribeJob):
                hub.unwatch_job(conn, op.job_id)
            else:
                hub.unwatch_room(conn, op.room)
        self.metrics.errors.labels(code).inc()
        session.fail_subscribe(op, code, message, now())

    async def _authorize_job(self, principal: Principal, job_id: str) -> tuple[str | None, str]:
        """None when ``principal`` may watch the job, else the error code and message.

        Admins and granted jobs need no read (whether the job exists is answered after
        registering, as before). Otherwise the owner comes from the hub's memory of the job
        (an owner, once recorded at publish, never changes) or from one HMGET.
        """
        assert self.store is not None and self.hub is not None
        if principal.admin or job_id in principal.jobs:
            return None, ""
        owner = self.hub.known_owner(job_id)
        if owner is None:
            epoch, raw_owner, raw_doc = await self.store.client.hmget(
                self.store.keys.snapshot(job_id), ["epoch", "owner", "document_id"]
            )
            if epoch is None:
                return "not_found", f"no job {job_id}"
            owner = json.loads(raw_owner) if raw_owner else None
            if owner is not None:
                self.hub.remember_meta(job_id, owner, json.loads(raw_doc) if raw_doc else None)
        if not principal.may_watch(job_id, owner):
            return "forbidden", f"job {job_id} is not yours"
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
        session.finish_job(op, time.monotonic(), replay=replay, snapshot=snapshot)
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

    async def _answer_room(self, conn: Connection, op: SubscribeRoom) -> tuple[str | None, str]:
        """Read and queue the answer to a room subscribe; or the error code and message."""
        session = conn.session
        try:
            snapshots, replays = await self._subscribe_room(session.principal, op)
        except (RedisError, OSError) as exc:
            return "unavailable", f"store unreachable: {exc!r}"
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
                    return "not_found", f"no job {op.job_id}", none
                if not principal.may_watch(op.job_id, snapshot.owner):
                    return "forbidden", f"job {op.job_id} is not yours", none
                return None, "", (None, snapshot)
            exists, owner = await self.job_owner(op.job_id)
            if not exists:
                return "not_found", f"no job {op.job_id}", none
            if not principal.may_watch(op.job_id, owner):
                return "forbidden", f"job {op.job_id} is not yours", none
            replay = await self.store.replay(op.job_id, op.epoch, op.last_id)
        except InvalidEvent as exc:
            return "invalid_position", str(exc), none
        except (RedisError, OSError) as exc:
            return "unavailable", f"store unreachable: {exc!r}", none
        if replay.reason == "unknown_job" or (not replay.recovered and replay.snapshot is None):
            return "not_found", f"no job {op.job_id}", none
        return None, "", (replay, None)

    async def _first_snapshot(self, job_id: str) -> JobSnapshot | None:
        """The job's snapshot for a subscriber registered live (see :meth:`Hub.cached_snapshot`)."""
        assert self.store is not None and self.hub is not None
        hub = self.hub
        snapshot = hub.cached_snapshot(job_id)
        if snapshot is not None:
            self.metrics.snapshot_reads.labels("cache").inc()
            return snapshot
        mark = hub.reading_snapshot(job_id)
        snapshot = await self.store.snapshot(job_id)
        self.metrics.snapshot_reads.labels("redis").inc()
        if snapshot is not None:
            hub.read_snapshot(job_id, mark, snapshot)
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
                s for s in await self.snapshots(jobs) if principal.may_watch(s.job_id, s.owner)
            ]
        replays: list[Replay] = []
        for job_id, (epoch, last_id) in op.positions.items():
            exists, owner = await self.job_owner(job_id)
            if not exists or not principal.may_watch(job_id, owner):
                continue  # not this user's: say nothing about it
            replay = await self.store.replay(job_id, epoch, last_id)
            if replay.reason != "unknown_job":
                replays.append(replay)
        return snapshots, replays

    def connections(self) -> list[dict[str, Any]]:
        if self.hub is None:
            return []
        now = time.monotonic()
        return [c.describe(now) for c in self.hub.conns.values()]


def create_router(settings: Settings, *, authority: TokenAuthority | None = None) -> APIRouter:
    """The bridge's routes; include them in any FastAPI app (``app.include_router(router)``).

    The returned router carries ``router.bridge`` (a :class:`Bridge`). Its lifespan starts the
    feed reader and, at shutdown, closes clients with 1012; the reader also starts lazily on
    the first WebSocket when the host app does not run lifespans. Set
    ``app.state.progress_token_authority = router.bridge.authority`` so the
    :func:`~progress_bridge.auth.current_user` dependency works in the app's own routes (the
    bridge's routes find it by themselves).
    """
    bridge = Bridge(settings, authority)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state = getattr(app, "state", None)
        if state is not None and getattr(state, STATE_KEY, None) is None:
            setattr(state, STATE_KEY, bridge.authority)
        await bridge.start()
        try:
            yield
        finally:
            await bridge.stop()

    async def attach(request: Request) -> None:
        setattr(request.state, STATE_KEY, bridge.authority)

    router = APIRouter(lifespan=lifespan)
    http = APIRouter(dependencies=[Depends(attach)])

    @router.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await bridge.serve_websocket(websocket)

    @http.get("/api/jobs/{job_id}", response_model=JobSnapshot)
    async def job_snapshot(job_id: str, user: CurrentUser) -> JobSnapshot:
        await bridge.start()
        assert bridge.store is not None
        snap = await bridge.store.snapshot(job_id)
        if snap is None:
            raise HTTPException(status_code=404, detail=f"no job {job_id}")
        if not user.may_watch(job_id, snap.owner):
            raise HTTPException(status_code=403, detail=f"job {job_id} is not yours")
        return snap

    @http.get("/api/admin/connections")
    async def admin_connections(user: CurrentUser) -> dict[str, Any]:
        if not user.admin:
            raise HTTPException(status_code=403, detail="admin only")
        conns = bridge.connections()
        return {"count": len(conns), "connections": conns}

    @http.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @http.get("/readyz")
    async def readyz() -> JSONResponse:
        ok, why = await bridge.ready()
        return JSONResponse({"ready": ok, "reason": why}, status_code=200 if ok else 503)

    @http.get("/metrics")
    async def metrics() -> Response:
        return Response(bridge.metrics.render(), media_type="text/plain; version=0.0.4")

    router.include_router(http)
    router.bridge = bridge  # type: ignore[attr-defined]
    return router


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app with only the bridge mounted."""
    router = create_router(settings)
    app = FastAPI(title="progress-bridge")
    setattr(app.state, STATE_KEY, router.bridge.authority)  # type: ignore[attr-defined]
    app.include_router(router)
    return app
