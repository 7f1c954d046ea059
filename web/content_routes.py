"""The content routes of the jobs API: what the worker extracted, as files it wrote once.

``GET /api/jobs/{job_id}/pages/{n}/image`` (a page drawn small) and
``GET /api/jobs/{job_id}/zones/{zone_id}`` (a zone's text or table). They are many small
requests per page, so the owner check reads the job's owner only
(:meth:`~web.job_access.JobAccess.check_owner`), and an answer that exists is cached for good
while "not yet" is never cached.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from progress_bridge.bridge.auth import CurrentUser
from tasks.pdf.preview import PREVIEW_MEDIA_TYPE, zone_page
from tasks.pdf.result import ZoneResult

from .api_errors import api_error, error_responses
from .job_access import JobAccess

__all__ = ["add_content_routes"]

#: A page image and a zone's content never change once written (the job's files are written once
#: under ids that are never reused); answers that say "not yet" must not be cached at all.
_CACHE_FOREVER = "private, max-age=86400, immutable"
_NO_STORE = {"Cache-Control": "no-store"}


def add_content_routes(router: APIRouter, access: JobAccess) -> None:
    """Add the page image and zone content routes to the jobs router."""

    @router.get(
        "/api/jobs/{job_id}/pages/{number}/image",
        response_class=FileResponse,
        summary="A small image of one page of the job's document",
        responses={
            200: {"description": "The page as a JPEG.", "content": {PREVIEW_MEDIA_TYPE: {}}},
            **error_responses(401, 403, 404),
        },
    )
    async def page_image(
        job_id: str, number: Annotated[int, Path(ge=1, le=1_000_000)], user: CurrentUser
    ) -> FileResponse:
        """Rendered once by the worker before the page's zones are declared: a page the job has
        declared has its image, unless it could not be drawn (404 ``not_rendered``, as for a page
        not declared yet). The answer never changes, so it may be cached."""
        await access.check_owner(job_id, user)
        path = access.previews(job_id).image(number)
        if not await run_in_threadpool(path.is_file):
            raise api_error(
                404, "not_rendered", f"Page {number} of job {job_id} has no image.", _NO_STORE
            )
        return FileResponse(
            path, media_type=PREVIEW_MEDIA_TYPE, headers={"Cache-Control": _CACHE_FOREVER}
        )

    @router.get(
        "/api/jobs/{job_id}/zones/{zone_id}",
        response_model=ZoneResult,
        summary="What was extracted from one zone: its text or table, kind, tool, confidence",
        responses=error_responses(401, 403, 404),
    )
    async def zone_details(
        job_id: str, zone_id: str, user: CurrentUser, response: Response
    ) -> ZoneResult:
        """Read from the file the worker writes when the zone's page has finished: until then
        (and for a page a cancelled or failed job never finished) 404 ``not_ready``; a zone the
        job does not have, 404 ``not_found``."""
        await access.check_owner(job_id, user)
        number = zone_page(zone_id)
        if number is None:
            raise api_error(404, "not_found", f"Job {job_id} has no zone {zone_id}.")
        details = await run_in_threadpool(access.previews(job_id).read_details, number)
        if details is None:
            raise api_error(
                404,
                "not_ready",
                f"Zone {zone_id} is not ready: page {number} has not finished.",
                _NO_STORE,
            )
        zone = details.zone(zone_id)
        if zone is None:
            raise api_error(404, "not_found", f"Job {job_id} has no zone {zone_id}.")
        response.headers["Cache-Control"] = _CACHE_FOREVER
        return zone
