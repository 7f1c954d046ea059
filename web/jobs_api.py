"""The PDF jobs REST API: upload, list, cancel, export, download, and what was extracted (page
images, zone content). Wiring only.

``create_jobs_router(settings)`` returns an :class:`fastapi.APIRouter`; include it next to the
bridge's router (which serves ``GET /api/jobs/{job_id}``, the snapshot, and the token authority
these routes use through :data:`~progress_bridge.auth.CurrentUser`).

====================================  ===========================================================
``POST /api/token``                   development sign-in: a token for any user name (403 when
                                      ``settings.production``)
``POST /api/jobs``                    multipart ``file`` (PDF) → 202 ``{job_id}``; 413 too large,
                                      415 not a PDF, 422 unreadable or over the page limit
``GET /api/jobs``                     the caller's jobs, newest first (from the owner index)
``DELETE /api/jobs/{job_id}``         cancel → 202; 409 when the job has already ended
``POST /api/jobs/{job_id}/exports``   ``{format}`` → 202 ``{export_id}``; 409 unless completed
``GET /api/jobs/{job_id}/exports/…``  the export file as an attachment (owner or admin)
``GET …/{job_id}/pages/{n}/image``    page ``n`` as a small JPEG (owner or admin); 404
                                      ``not_rendered`` until the worker has drawn it
``GET …/{job_id}/zones/{zone_id}``    a zone's extracted content (owner or admin); 404
                                      ``not_ready`` until its page has finished
====================================  ===========================================================

Rules: every route needs ``Authorization: Bearer <JWT>`` (401 otherwise). A job that does not
exist is 404; a job that is not the caller's is 403, as on the bridge. Watching may be granted
by a token's ``jobs`` claim, but cancelling, exporting, downloading and seeing the document's
content (page images, zone text) need the owner or an admin. Error bodies are
``{"detail": "<sentence>"}`` with the stable reason in the ``X-Error-Code`` header (e.g.
``not_a_pdf``, ``too_large``, ``already_ended``).

The routes are grouped by what they touch: the job itself (here), its exports
(:mod:`web.export_routes`) and its extracted content (:mod:`web.content_routes`); they share a
:class:`~web.job_access.JobAccess` (store, files, ownership checks) and the error format of
:mod:`web.api_errors`.

Cancelling writes the job's ``processing_cancelled`` first (the store refuses it atomically if
the job has already ended: 409), then revokes the job's task and its canvas children; running
parts stop at their next page or zone (see :mod:`tasks.pdf_tasks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from progress_bridge.bridge.auth import CurrentUser, authority_of
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingCancelled
from progress_bridge.events.snapshot import JobSnapshot
from progress_bridge.exceptions import DuplicateTerminal, StoreRejected, StreamUnavailable
from tasks.pdf_tasks import process_pdf, revoke_job

from .api_errors import ErrorBody, api_error, error_responses
from .content_routes import add_content_routes
from .export_routes import ExportAccepted, ExportRequest, add_export_routes
from .job_access import JobAccess
from .uploads import (
    UploadRejected,
    cleanup_expired,
    expired_upload_ids,
    receive_upload,
    validate_pdf,
)

__all__ = [
    "CancelAccepted",
    "ErrorBody",
    "ExportAccepted",
    "ExportRequest",
    "JobAccepted",
    "JobList",
    "TokenRequest",
    "TokenResponse",
    "create_jobs_router",
]

log = logging.getLogger("web.jobs_api")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(_Model):
    user: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$", examples=["alice"])


class TokenResponse(_Model):
    token: str = Field(description="HS256 JWT; send as `Authorization: Bearer <token>`.")
    user: str
    expires_in_s: int


class JobAccepted(_Model):
    job_id: str = Field(description="Watch it on /ws or GET /api/jobs/{job_id}.")
    display_name: str = Field(description="The sanitised file name (never used as a path).")
    pages: int
    size_bytes: int


class JobList(_Model):
    jobs: list[JobSnapshot] = Field(description="The caller's jobs, newest first.")


class CancelAccepted(_Model):
    job_id: str
    status: str = Field(default="cancelled")


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def create_jobs_router(settings: Settings) -> APIRouter:
    """The PDF jobs routes; their lifespan closes the Redis client and runs the retention cleanup.

    The app must set ``app.state.progress_token_authority`` (``web.app.create_app`` does), and
    the web app and the workers must share ``settings.data_dir``.
    """
    access = JobAccess(settings)
    files = access.files
    store = access.store

    async def cleanup_once() -> int:
        candidates = expired_upload_ids(files, settings.upload_retention_s)
        running: set[str] = set()
        for job_id, snap in zip(candidates, await store().snapshots(candidates), strict=True):
            if snap is not None and not snap.finished:
                running.add(job_id)
        removed = await run_in_threadpool(
            cleanup_expired, files, settings.upload_retention_s, keep=running.__contains__
        )
        if removed:
            log.info("retention: removed %d expired files", len(removed))
        return len(removed)

    async def cleanup_loop() -> None:
        while True:
            try:
                await cleanup_once()
            except (StreamUnavailable, StoreRejected) as exc:  # retried at the next interval
                log.warning("retention cleanup skipped: %s", exc)
            except Exception:  # a bug: logged whole, retried at the next interval
                log.exception("retention cleanup failed")
            await asyncio.sleep(settings.cleanup_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(cleanup_loop(), name="pdf-retention")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await access.aclose()

    router = APIRouter(lifespan=lifespan, tags=["PDF jobs"])
    router.cleanup_once = cleanup_once  # type: ignore[attr-defined]

    @router.post(
        "/api/token",
        response_model=TokenResponse,
        summary="Development sign-in: a token for any user name",
        responses=error_responses(403),
    )
    async def token(body: TokenRequest, request: Request) -> TokenResponse:
        """Stands in for a real sign-in during development; refused when production is on."""
        if settings.production:
            raise api_error(403, "disabled", "Development sign-in is disabled in production.")
        minted = authority_of(request).mint(body.user)
        return TokenResponse(token=minted, user=body.user, expires_in_s=settings.token_ttl_s)

    @router.post(
        "/api/jobs",
        status_code=202,
        response_model=JobAccepted,
        summary="Upload a PDF and start its job",
        responses=error_responses(401, 413, 415, 422, 503),
        openapi_extra=_UPLOAD_BODY,
    )
    async def create_job(request: Request, user: CurrentUser) -> JobAccepted:
        """Store the upload under a generated name, validate it, publish the job (owned by the
        caller). Progress then flows on the job's stream: watch it on ``/ws``."""
        job_id = f"pdf-{uuid.uuid4().hex}"
        try:
            stored = await receive_upload(request, files, job_id, settings.max_upload_bytes)
            pages = await run_in_threadpool(validate_pdf, stored.path, settings.max_pages)
        except UploadRejected as exc:
            files.upload(job_id).unlink(missing_ok=True)
            raise api_error(exc.status_code, exc.code, exc.reason) from None
        try:
            await run_in_threadpool(
                process_pdf.submit,
                job_id,
                stored.display_name,
                owner=user.user,
                document_id=stored.display_name,
                task_id=job_id,
            )
        except Exception as exc:
            stored.path.unlink(missing_ok=True)
            log.error("could not publish job %s: %r", job_id, exc)
            raise api_error(
                503, "queue_unavailable", "The job could not be queued; try again."
            ) from None
        return JobAccepted(
            job_id=job_id,
            display_name=stored.display_name,
            pages=pages,
            size_bytes=stored.size_bytes,
        )

    @router.get(
        "/api/jobs",
        response_model=JobList,
        summary="The caller's jobs, newest first",
        responses=error_responses(401),
    )
    async def list_jobs(
        user: CurrentUser, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> JobList:
        """Jobs the caller owns (canvas children have no owner and never appear here)."""
        ids = await store().jobs_of(user.user, limit)
        snaps = await store().snapshots(ids)
        return JobList(jobs=[s for s in snaps if s is not None])

    @router.delete(
        "/api/jobs/{job_id}",
        status_code=202,
        response_model=CancelAccepted,
        summary="Cancel a job",
        responses=error_responses(401, 403, 404, 409),
    )
    async def cancel_job(job_id: str, user: CurrentUser) -> CancelAccepted:
        """Ends the job with exactly one ``processing_cancelled``, then revokes its tasks."""
        snap = await access.owned_snapshot(job_id, user)
        if snap.finished:
            raise api_error(
                409, "already_ended", f"Job {job_id} has already ended ({snap.status})."
            )
        event = ProcessingCancelled(
            job_id=job_id,
            owner=snap.owner,
            document_id=snap.document_id,
            reason=f"Cancelled by {user.user}.",
        )
        try:
            await store().append(event)
        except DuplicateTerminal as exc:
            raise api_error(
                409, "already_ended", f"Job {job_id} has already ended ({exc.existing})."
            ) from None
        try:
            await run_in_threadpool(revoke_job, process_pdf.app, job_id)
        except Exception as exc:  # the job has ended: its tasks stop by themselves
            log.warning("could not revoke the tasks of job %s: %r", job_id, exc)
        return CancelAccepted(job_id=job_id)

    add_export_routes(router, access)
    add_content_routes(router, access)
    return router
