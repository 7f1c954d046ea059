"""The event schema, written once: pydantic models with a literal ``type`` tag.

:data:`ProgressEvent` is the discriminated union every reader parses with. ``scripts/gen_types``
exports it as JSON Schema (:mod:`.jsonschema`) and generates the TypeScript types from that, so
the Python models are the single source of truth for the wire.

Every event carries its envelope: ``id`` and ``epoch`` (its position in the job's stream, filled
in by the store; ``None`` before it is appended), ``job_id``, the canvas ids ``parent_id`` and
``root_id``, ``document_id``, ``owner``, ``ts`` (Unix seconds) and the schema version ``v``.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "JOB_ID_PATTERN",
    "SCHEMA_VERSION",
    "ExportCompleted",
    "ExportFailed",
    "ExportFormat",
    "ExportProgress",
    "ExportStarted",
    "JobStatus",
    "PageInfo",
    "ProcessingCancelled",
    "ProcessingCompleted",
    "ProcessingFailed",
    "ProcessingProgress",
    "ProcessingQueued",
    "ProcessingRetrying",
    "ProcessingStarted",
    "ProgressEvent",
    "ZoneCompleted",
    "ZoneInfo",
    "ZoneProcessing",
    "ZoneStatus",
    "ZonesDeclared",
    "event_adapter",
    "parse_event",
]

#: Bumped when a field changes meaning or disappears; adding an optional field keeps it.
SCHEMA_VERSION = 1

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN, description="Celery task id of the job.")]
ShortText = Annotated[str, Field(max_length=2_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class JobStatus(StrEnum):
    """Where a job is in its life; the last three are terminal."""

    QUEUED = "queued"
    STARTED = "started"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ZoneStatus(StrEnum):
    """Where one zone is; a zone moves pending → processing → completed | failed."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class ExportFormat(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"
    CSV = "csv"


class _Model(BaseModel):
    # NaN and infinities are refused everywhere: a progress bar cannot show them.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_serialization_defaults_required=True,
    )


class ZoneInfo(_Model):
    """A zone as declared before processing: where it is and what it looks like."""

    zone_id: Name
    index: int = Field(ge=0, description="Position in reading order, 0-based, unique per job.")
    page: int | None = Field(default=None, ge=1, description="1-based page number.")
    kind: str | None = Field(default=None, max_length=40, description="text, table, figure, …")
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="x0, top, x1, bottom in PDF points from the page's top-left."
    )


class PageInfo(_Model):
    """A page's size, so a viewer can draw zone boxes to scale."""

    number: int = Field(ge=1)
    width: float = Field(gt=0, description="Points.")
    height: float = Field(gt=0, description="Points.")


class _Event(_Model):
    v: int = Field(default=SCHEMA_VERSION, description="Schema version.")
    id: str | None = Field(default=None, description="Stream position; strictly increasing.")
    epoch: str | None = Field(default=None, description="Token of the job stream's lifetime.")
    job_id: JobId
    parent_id: JobId | None = None
    root_id: JobId | None = None
    document_id: Name | None = None
    owner: Name | None = None
    ts: float = Field(default_factory=time.time, description="Unix time, seconds.")


class ProcessingQueued(_Event):
    """The task was published (publisher side)."""

    type: Literal["processing_queued"] = "processing_queued"
    task_name: Name


class ProcessingStarted(_Event):
    """A worker started an attempt; a redelivered message starts a new attempt."""

    type: Literal["processing_started"] = "processing_started"
    attempt: int = Field(default=1, ge=1)
    worker: str | None = Field(default=None, max_length=200)


class ProcessingProgress(_Event):
    """Overall progress; rapid updates coalesce (latest wins)."""

    type: Literal["processing_progress"] = "processing_progress"
    percent: float = Field(ge=0, le=100)
    current_operation: ShortText | None = None
    current_zone: Name | None = None
    zones_completed: int | None = Field(default=None, ge=0)
    zones_total: int | None = Field(default=None, ge=0)
    eta_s: float | None = Field(default=None, ge=0, description="Estimated seconds remaining.")


class ZonesDeclared(_Event):
    """The zones the job will process (may be sent once per page as pages are analysed)."""

    type: Literal["zones_declared"] = "zones_declared"
    zones: list[ZoneInfo] = Field(max_length=10_000)
    pages: list[PageInfo] = Field(default_factory=list, max_length=10_000)
    zones_total: int | None = Field(default=None, ge=0, description="Zones declared so far.")


class ZoneProcessing(_Event):
    """A zone's processing began."""

    type: Literal["zone_processing"] = "zone_processing"
    zone_id: Name
    zone_index: int = Field(ge=0)
    page: int | None = Field(default=None, ge=1)
    kind: str | None = Field(default=None, max_length=40)
    processing_tool: Name


class ZoneCompleted(_Event):
    """A zone finished, successfully or not (``status``)."""

    type: Literal["zone_completed"] = "zone_completed"
    zone_id: Name
    zone_index: int = Field(ge=0)
    page: int | None = Field(default=None, ge=1)
    processing_tool: Name
    status: Literal[ZoneStatus.COMPLETED, ZoneStatus.FAILED] = ZoneStatus.COMPLETED
    confidence: float | None = Field(default=None, ge=0, le=1)
    duration_ms: int | None = Field(default=None, ge=0)
    error: ShortText | None = None
    summary: ShortText | None = Field(default=None, description="A short preview of the result.")


class ProcessingRetrying(_Event):
    """An attempt failed and another is scheduled; not an end."""

    type: Literal["processing_retrying"] = "processing_retrying"
    attempt: int = Field(ge=2, description="Number of the attempt that comes next.")
    reason: ShortText
    countdown_s: float | None = Field(default=None, ge=0)


class ProcessingCompleted(_Event):
    """Terminal: the job succeeded."""

    type: Literal["processing_completed"] = "processing_completed"
    result_summary: ShortText | None = None
    duration_ms: int | None = Field(default=None, ge=0)


class ProcessingFailed(_Event):
    """Terminal: the job failed. Never carries a traceback."""

    type: Literal["processing_failed"] = "processing_failed"
    error_type: Name
    error_message: ShortText
    lost: bool = Field(default=False, description="The worker died and the job will not rerun.")


class ProcessingCancelled(_Event):
    """Terminal: the job was revoked."""

    type: Literal["processing_cancelled"] = "processing_cancelled"
    reason: ShortText | None = None


class _ExportEvent(_Event):
    export_id: Name
    format: ExportFormat


class ExportStarted(_ExportEvent):
    type: Literal["export_started"] = "export_started"


class ExportProgress(_ExportEvent):
    type: Literal["export_progress"] = "export_progress"
    percent: float = Field(ge=0, le=100)


class ExportCompleted(_ExportEvent):
    type: Literal["export_completed"] = "export_completed"
    size_bytes: int = Field(ge=0)
    filename: Name


class ExportFailed(_ExportEvent):
    type: Literal["export_failed"] = "export_failed"
    error_message: ShortText


ProgressEvent = Annotated[
    ProcessingQueued
    | ProcessingStarted
    | ProcessingProgress
    | ZonesDeclared
    | ZoneProcessing
    | ZoneCompleted
    | ProcessingRetrying
    | ProcessingCompleted
    | ProcessingFailed
    | ProcessingCancelled
    | ExportStarted
    | ExportProgress
    | ExportCompleted
    | ExportFailed,
    Field(discriminator="type"),
]

event_adapter: TypeAdapter[ProgressEvent] = TypeAdapter(ProgressEvent)


def parse_event(data: str | bytes | dict[str, Any]) -> ProgressEvent:
    """Validate one event from JSON text or a dict.

    Raises:
        pydantic.ValidationError: the payload is off-schema (callers at a boundary convert it to
            :class:`~progress_bridge.exceptions.InvalidEvent`).
    """
    if isinstance(data, dict):
        return event_adapter.validate_python(data)
    return event_adapter.validate_json(data)
