"""The export routes of the jobs API: start an export of a completed job, download its file.

``POST /api/jobs/{job_id}/exports`` runs an export task (its progress arrives on the job's
stream); ``GET /api/jobs/{job_id}/exports/{export_id}`` serves the file once the stream says it
is done. Both need the owner or an admin (:meth:`~web.job_access.JobAccess.owned_snapshot`).
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from progress_bridge.bridge.auth import CurrentUser
from progress_bridge.events import ExportFormat
from tasks.pdf.export import MEDIA_TYPES
from tasks.pdf_tasks import export_result

from .api_errors import api_error, error_responses
from .job_access import JobAccess

__all__ = ["ExportAccepted", "ExportRequest", "add_export_routes"]

log = logging.getLogger("web.jobs_api")


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat


class ExportAccepted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    export_id: str = Field(description="Download with GET /api/jobs/{job_id}/exports/{export_id}.")
    job_id: str
    format: ExportFormat


def add_export_routes(router: APIRouter, access: JobAccess) -> None:
    """Add the export routes to the jobs router."""

    @router.post(
        "/api/jobs/{job_id}/exports",
        status_code=202,
        response_model=ExportAccepted,
        summary="Export a completed job (JSON, Markdown or CSV)",
        responses=error_responses(401, 403, 404, 409, 503),
    )
    async def create_export(job_id: str, body: ExportRequest, user: CurrentUser) -> ExportAccepted:
        """Runs an export task; ``export_started`` / ``export_progress`` / ``export_completed``
        (or ``export_failed``) arrive on the job's stream, then the file can be downloaded."""
        snap = await access.owned_snapshot(job_id, user)
        if snap.status != "completed":
            raise api_error(
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
            raise api_error(
                503, "queue_unavailable", "The export could not be queued; try again."
            ) from None
        return ExportAccepted(export_id=export_id, job_id=job_id, format=body.format)

    @router.get(
        "/api/jobs/{job_id}/exports/{export_id}",
        response_class=FileResponse,
        summary="Download an export",
        responses={
            200: {"description": "The file, as an attachment.", "content": {"*/*": {}}},
            **error_responses(401, 403, 404, 409),
        },
    )
    async def download_export(job_id: str, export_id: str, user: CurrentUser) -> FileResponse:
        """The export's file, named after the document (``report.md``), as an attachment."""
        snap = await access.owned_snapshot(job_id, user)
        state = next((e for e in snap.exports if e.export_id == export_id), None)
        if state is None:
            raise api_error(404, "not_found", f"Job {job_id} has no export {export_id}.")
        if state.status != "completed":
            detail = state.error_message if state.status == "failed" else "is still running"
            raise api_error(409, "export_not_ready", f"Export {export_id} {detail}.")
        try:
            path = access.files.export(export_id, state.format)
        except ValueError:
            raise api_error(404, "not_found", f"Job {job_id} has no export {export_id}.") from None
        if not path.is_file():
            raise api_error(404, "expired", f"Export {export_id} has expired; export again.")
        return FileResponse(
            path,
            media_type=MEDIA_TYPES[state.format],
            filename=state.filename or path.name,
            content_disposition_type="attachment",
        )
