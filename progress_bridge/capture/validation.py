"""Arguments of the progress calls, validated at the call site: a bad value raises
:class:`InvalidEvent` with a readable message, and nothing is written. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..events.schema import PageInfo, ProgressEvent, ZoneInfo
from ..exceptions import InvalidEvent

__all__ = ["build_event", "page_info", "zone_info"]


def _message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def build_event(
    job_id: str, cls: type[Any], env: Mapping[str, Any], **fields: Any
) -> ProgressEvent:
    """``cls(**env, **fields)``, or :class:`InvalidEvent` naming the event and the field."""
    try:
        event: ProgressEvent = cls(**env, **fields)
    except ValidationError as exc:
        name = cls.model_fields["type"].default
        raise InvalidEvent(f"invalid {name}: {_message(exc)}", job_id=job_id) from None
    return event


def zone_info(job_id: str, zone: ZoneInfo | Mapping[str, Any]) -> ZoneInfo:
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo.model_validate(zone)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid zone {zone!r}: {_message(exc)}", job_id=job_id) from None


def page_info(job_id: str, page: Any) -> PageInfo:
    if isinstance(page, PageInfo):
        return page
    try:
        return PageInfo.model_validate(page)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid page {page!r}: {_message(exc)}", job_id=job_id) from None
