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

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from progress_bridge.access import Principal
from progress_bridge.bridge.auth import CurrentUser, authority_of
from progress_bridge.config import Settings
from progress_bridge.events import ExportFormat, ProcessingCancelled
from progress_bridge.events.snapshot import JobSnapshot
from progress_bridge.exceptions import (
    ConfigError,
    DuplicateTerminal,
    StoreRejected,
    StreamUnavailable,
)
from progress_bridge.store import AsyncEventStore
from tasks.pdf.export import MEDIA_TYPES
from tasks.pdf.preview import PREVIEW_MEDIA_TYPE, PreviewFiles, zone_page
from tasks.pdf.result import ZoneResult
from tasks.pdf_tasks import JobFiles, export_result, process_pdf, revoke_job

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

#: A page image and a zone's content never change once written (the job's files are written once
#: under ids that are never reused); answers that say "not yet" must not be cached at all.
_CACHE_FOREVER = "private, max-age=86400, immutable"
_NO_STORE = {"Cache-Control": "no-store"}


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


class ExportRequest(_Model):
    format: ExportFormat


class ExportAccepted(_Model):
    export_id: str = Field(description="Download with GET /api/jobs/{job_id}/exports/{export_id}.")
    job_id: str
    format: ExportFormat


class ErrorBody(BaseModel):
    detail: str


def _error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> HTTPException:
    return HTTPException(
        status_code=status, detail=detail, headers={"X-Error-Code": code, **(headers or {})}
    )


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "No token, or a malformed, badly signed or expired one.",
        403: "The job is not the caller's.",
        404: "No such job (or export, page image or zone, or not yet: see `X-Error-Code`).",
        409: "The job is not in a state that allows this.",
        413: "The upload is larger than `max_upload_bytes`.",
        415: "The upload is not a PDF (no `%PDF-` header).",
        422: "The PDF cannot be processed (corrupt, truncated, encrypted, empty, too many pages) "
        "or the request is malformed.",
        503: "The task queue is unreachable.",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


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
    files = JobFiles(settings.data_dir)
    holder: dict[str, AsyncEventStore] = {}

    def store() -> AsyncEventStore:
        current = holder.get("store")
        if current is None:
            if not settings.redis_url:
                raise ConfigError("PROGRESS_REDIS_URL (or REDIS_URL) is missing and has no default")
            current = holder["store"] = AsyncEventStore.from_url(settings.redis_url, settings)
        return current

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
            if "store" in holder:
                await holder.pop("store").aclose()

    router = APIRouter(lifespan=lifespan, tags=["PDF jobs"])
    router.cleanup_once = cleanup_once  # type: ignore[attr-defined]

    async def check_owner(job_id: str, user: Principal) -> None:
        """As :func:`owned_snapshot` (404, then 403), with one HMGET instead of the snapshot:
        a page's images and zones are many small requests, and a job's snapshot can be large."""
        meta = await store().job_meta(job_id)
        if meta is None:
            raise _error(404, "not_found", f"No job {job_id}.")
        if not user.may_manage(meta[0]):
            raise _error(403, "forbidden", f"Job {job_id} is not yours.")

    def previews(job_id: str) -> PreviewFiles:
        try:
            return PreviewFiles(files.previews_dir(job_id))
        except ValueError:  # a job id the store knows but not a file name: nothing stored
            raise _error(404, "not_found", f"Job {job_id} has no files.") from None

    async def owned_snapshot(job_id: str, user: Principal) -> JobSnapshot:
        snap = await store().snapshot(job_id)
        if snap is None:
            raise _error(404, "not_found", f"No job {job_id}.")
        if not user.may_manage(snap.owner):
            raise _error(403, "forbidden", f"Job {job_id} is not yours.")
        return snap

    @router.post(
        "/api/token",
        response_model=TokenResponse,
        summary="Development sign-in: a token for any user name",
        responses=_responses(403),
    )
    async def token(body: TokenRequest, request: Request) -> TokenResponse:
        """Stands in for a real sign-in during development; refused when production is on."""
        if settings.production:
            raise _error(403, "disabled", "Development sign-in is disabled in production.")
        minted = authority_of(request).mint(body.user)
        return TokenResponse(token=minted, user=body.user, expires_in_s=settings.token_ttl_s)

    @router.post(
        "/api/jobs",
        status_code=202,
        response_model=JobAccepted,
        summary="Upload a PDF and start its job",
        responses=_responses(401, 413, 415, 422, 503),
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
            raise _error(exc.status_code, exc.code, exc.reason) from None
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
            raise _error(
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
        responses=_responses(401),
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
        responses=_responses(401, 403, 404, 409),
    )
    async def cancel_job(job_id: str, user: CurrentUser) -> CancelAccepted:
        """Ends the job with exactly one ``processing_cancelled``, then revokes its tasks."""
        snap = await owned_snapshot(job_id, user)
        if snap.finished:
            raise _error(409, "already_ended", f"Job {job_id} has already ended ({snap.status}).")
        event = ProcessingCancelled(
            job_id=job_id,
            owner=snap.owner,
            document_id=snap.document_id,
            reason=f"Cancelled by {user.user}.",
        )
        try:
            await store().append(event)
        except DuplicateTerminal as exc:
            raise _error(
                409, "already_ended", f"Job {job_id} has already ended ({exc.existing})."
            ) from None
        try:
            await run_in_threadpool(revoke_job, process_pdf.app, job_id)
        except Exception as exc:  # the job has ended: its tasks stop by themselves
            log.warning("could not revoke the tasks of job %s: %r", job_id, exc)
        return CancelAccepted(job_id=job_id)

    @router.post(
        "/api/jobs/{job_id}/exports",
        status_code=202,
        response_model=ExportAccepted,
        summary="Export a completed job (JSON, Markdown or CSV)",
        responses=_responses(401, 403, 404, 409, 503),
    )
    async def create_export(job_id: str, body: ExportRequest, user: CurrentUser) -> ExportAccepted:
        """Runs an export task; ``export_started`` / ``export_progress`` / ``export_completed``
        (or ``export_failed``) arrive on the job's stream, then the file can be downloaded."""
        snap = await owned_snapshot(job_id, user)
        if snap.status != "completed":
            raise _error(
                409, "not_completed", f"Job {job_id} is {snap.status}; only completed jobs export."
            )
        export_id = f"exp-{uuid.uuid4().hex}"
        try:
            await run_in_threadpool(
                export_result.apply_async,
                (job_id, export_id, body.format.value),
                {"owner": snap.owner},
                task_id=export_id,
            )
        except Exception as exc:
            log.error("could not publish export %s: %r", export_id, exc)
            raise _error(
                503, "queue_unavailable", "The export could not be queued; try again."
            ) from None
        return ExportAccepted(export_id=export_id, job_id=job_id, format=body.format)

    @router.get(
        "/api/jobs/{job_id}/exports/{export_id}",
        response_class=FileResponse,
        summary="Download an export",
        responses={
            200: {"description": "The file, as an attachment.", "content": {"*/*": {}}},
            **_responses(401, 403, 404, 409),
        },
    )
    async def download_export(job_id: str, export_id: str, user: CurrentUser) -> FileResponse:
        """The export's file, named after the document (``report.md``), as an attachment."""
        snap = await owned_snapshot(job_id, user)
        state = next((e for e in snap.exports if e.export_id == export_id), None)
        if state is None:
            raise _error(404, "not_found", f"Job {job_id} has no export {export_id}.")
        if state.status != "completed":
            detail = state.error_message if state.status == "failed" else "is still running"
            raise _error(409, "export_not_ready", f"Export {export_id} {detail}.")
        try:
            path = files.export(export_id, state.format)
        except ValueError:
            raise _error(404, "not_found", f"Job {job_id} has no export {export_id}.") from None
        if not path.is_file():
            raise _error(404, "expired", f"Export {export_id} has expired; export again.")
        return FileResponse(
            path,
            media_type=MEDIA_TYPES[state.format],
            filename=state.filename or path.name,
            content_disposition_type="attachment",
        )

    @router.get(
        "/api/jobs/{job_id}/pages/{number}/image",
        response_class=FileResponse,
        summary="A small image of one page of the job's document",
        responses={
            200: {"description": "The page as a JPEG.", "content": {PREVIEW_MEDIA_TYPE: {}}},
            **_responses(401, 403, 404),
        },
    )
    async def page_image(
        job_id: str, number: Annotated[int, Path(ge=1, le=1_000_000)], user: CurrentUser
    ) -> FileResponse:
        """Rendered once by the worker before the page's zones are declared: a page the job has
        declared has its image, unless it could not be drawn (404 ``not_rendered``, as for a page
        not declared yet). The answer never changes, so it may be cached."""
        await check_owner(job_id, user)
        path = previews(job_id).image(number)
        if not await run_in_threadpool(path.is_file):
            raise _error(
                404, "not_rendered", f"Page {number} of job {job_id} has no image.", _NO_STORE
            )
        return FileResponse(
            path, media_type=PREVIEW_MEDIA_TYPE, headers={"Cache-Control": _CACHE_FOREVER}
        )

    @router.get(
        "/api/jobs/{job_id}/zones/{zone_id}",
        response_model=ZoneResult,
        summary="What was extracted from one zone: its text or table, kind, tool, confidence",
        responses=_responses(401, 403, 404),
    )
    async def zone_details(
        job_id: str, zone_id: str, user: CurrentUser, response: Response
    ) -> ZoneResult:
        """Read from the file the worker writes when the zone's page has finished: until then
        (and for a page a cancelled or failed job never finished) 404 ``not_ready``; a zone the
        job does not have, 404 ``not_found``."""
        await check_owner(job_id, user)
        number = zone_page(zone_id)
        if number is None:
            raise _error(404, "not_found", f"Job {job_id} has no zone {zone_id}.")
        details = await run_in_threadpool(previews(job_id).read_details, number)
        if details is None:
            raise _error(
                404,
                "not_ready",
                f"Zone {zone_id} is not ready: page {number} has not finished.",
                _NO_STORE,
            )
        zone = details.zone(zone_id)
        if zone is None:
            raise _error(404, "not_found", f"Job {job_id} has no zone {zone_id}.")
        response.headers["Cache-Control"] = _CACHE_FOREVER
        return zone

    return router
