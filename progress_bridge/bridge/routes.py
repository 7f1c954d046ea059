"""The bridge as FastAPI routes: ``/ws``, job snapshots, health, metrics, an admin view.

``create_router(settings)`` returns a :class:`BridgeRouter` (an :class:`fastapi.APIRouter`) any
FastAPI app can include; its lifespan (merged into the app's by ``include_router``) starts the
process's one feed reader and, at shutdown, closes every client with 1012.
``create_app(settings)`` is the smallest app around it (what ``progress-bridge serve`` runs
without ``--app``).

Routes (the WebSocket protocol is ``docs/protocol.md``):

- ``GET /ws`` — WebSocket (:mod:`.endpoint`): token as the ``token.<JWT>`` subprotocol or
  ``?token=``.
- ``GET /api/jobs/{job_id}`` — the job's snapshot with its ``epoch`` and ``last_id``, and who
  watches it (``presence``; users' names for admins) (Bearer).
- ``GET /healthz`` — the process is up. ``GET /readyz`` — Redis answers and the reader is current.
- ``GET /metrics`` — Prometheus. ``GET /api/admin/connections`` — live connections and who
  watches the jobs they watch (admin).
- ``GET /asyncapi.json`` — the protocol as an AsyncAPI 3 document.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import WebSocketRoute

from ..config import Settings
from ..events.snapshot import JobSnapshot
from ..exceptions import StoreRejected, StreamUnavailable
from .auth import STATE_KEY, CurrentUser
from .core.asyncapi import asyncapi_document
from .core.frames import JobPresence
from .endpoint import WebSocketEndpoint
from .service import Bridge
from .sse import sse_endpoint
from .tokens import TokenAuthority

__all__ = ["BridgeRouter", "JobView", "create_app", "create_router"]


class JobView(JobSnapshot):
    """``GET /api/jobs/{id}``: the job's snapshot and who watches it (when presence is on)."""

    presence: JobPresence | None = None


class BridgeRouter(APIRouter):
    """The bridge's routes, with the :class:`Bridge` they serve as ``router.bridge`` (an app
    that mints tokens or reads metrics uses it)."""

    def __init__(self, bridge: Bridge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bridge = bridge


def create_router(settings: Settings, *, authority: TokenAuthority | None = None) -> BridgeRouter:
    """The bridge's routes; include them in any FastAPI app (``app.include_router(router)``).

    The returned router carries ``router.bridge`` (a :class:`Bridge`). Its lifespan starts the
    feed reader and, at shutdown, closes clients with 1012; the reader also starts lazily on
    the first WebSocket when the host app does not run lifespans. Set
    ``app.state.progress_token_authority = router.bridge.authority`` so the
    :func:`~progress_bridge.bridge.auth.current_user` dependency works in the app's own routes (the
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

    router = BridgeRouter(bridge, lifespan=lifespan)
    http = APIRouter(dependencies=[Depends(attach)])

    router.routes.append(WebSocketRoute("/ws", WebSocketEndpoint(bridge), name="progress_ws"))

    @http.get("/api/jobs/{job_id}", response_model=JobView, response_model_exclude_none=True)
    async def job_snapshot(job_id: str, user: CurrentUser) -> JobView:
        await bridge.start()
        assert bridge.store is not None
        try:
            snap = await bridge.store.snapshot(job_id)
            if snap is None:
                raise HTTPException(status_code=404, detail=f"no job {job_id}")
            if not user.may_watch(job_id, snap.owner):
                raise HTTPException(status_code=403, detail=f"job {job_id} is not yours")
            presence = await bridge.presence_of(job_id, admin=user.admin)
        except (StreamUnavailable, StoreRejected) as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return JobView(**snap.model_dump(), presence=presence)

    @http.get("/api/admin/connections")
    async def admin_connections(user: CurrentUser) -> dict[str, Any]:
        if not user.admin:
            raise HTTPException(status_code=403, detail="admin only")
        conns = bridge.connections()
        try:
            presence = await bridge.local_presence()
        except (StreamUnavailable, StoreRejected) as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return {"count": len(conns), "connections": conns, "presence": presence}

    @http.get("/healthz")
    async def healthz() -> dict[str, str | int]:
        """The process is up (``pid``: which one, under ``serve --workers N``)."""
        return {"status": "ok", "pid": os.getpid()}

    @http.get("/readyz")
    async def readyz() -> JSONResponse:
        ok, why = await bridge.ready()
        return JSONResponse({"ready": ok, "reason": why}, status_code=200 if ok else 503)

    @router.get("/sse", include_in_schema=False)
    async def sse(request: Request) -> Response:
        """The same events over Server-Sent Events (``docs/protocol.md``, *SSE*)."""
        return await sse_endpoint(bridge, request)

    @http.get("/asyncapi.json")
    async def asyncapi() -> dict[str, Any]:
        """The WebSocket protocol as an AsyncAPI 3 document (generated from the frame models)."""
        return asyncapi_document()

    @http.get("/metrics")
    async def metrics() -> Response:
        return Response(bridge.metrics.render(), media_type="text/plain; version=0.0.4")

    router.include_router(http)
    return router


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app with only the bridge mounted."""
    router = create_router(settings)
    app = FastAPI(title="progress-bridge")
    setattr(app.state, STATE_KEY, router.bridge.authority)
    app.include_router(router)
    return app
