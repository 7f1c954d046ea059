"""How the jobs API answers an error: ``{"detail": "<sentence>"}`` with the stable reason in
the ``X-Error-Code`` header, and the error answers each route documents in its OpenAPI entry.

One place for both, so every route group (:mod:`web.jobs_api`, :mod:`web.export_routes`,
:mod:`web.content_routes`) words the same status the same way.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel

__all__ = ["ErrorBody", "api_error", "error_responses"]

_DESCRIPTIONS = {
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


class ErrorBody(BaseModel):
    detail: str


def api_error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> HTTPException:
    """The exception a route raises: ``detail`` for people, ``code`` for programs."""
    return HTTPException(
        status_code=status, detail=detail, headers={"X-Error-Code": code, **(headers or {})}
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry for the error statuses a route may answer."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}
