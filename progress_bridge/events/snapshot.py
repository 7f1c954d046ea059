"""A job's latest state: what each event changes in the snapshot hash, and how to read it back.

The snapshot is a Redis hash updated by the same atomic call that appends the event (see
:mod:`.streams`). Each event contributes a few ``field → JSON value`` pairs
(:func:`snapshot_fields`); the append script writes them with one ``HSET``. Zones keep their
declared shape (``zone:<id>:info``) apart from their progress (``zone:<id>:state``) so a later
event never erases what an earlier one said. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .schema import (
    ExportCompleted,
    ExportFailed,
    ExportFormat,
    ExportProgress,
    ExportStarted,
    JobStatus,
    PageInfo,
    ProcessingCancelled,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingProgress,
    ProcessingQueued,
    ProcessingRetrying,
    ProcessingStarted,
    ProgressEvent,
    ZoneCompleted,
    ZoneProcessing,
    ZonesDeclared,
    ZoneStatus,
)

__all__ = [
    "ExportState",
    "JobSnapshot",
    "ZoneState",
    "packed_snapshot_fields",
    "snapshot_fields",
]

#: Hash fields the store itself maintains (not derived from one event's payload).
EPOCH_FIELD = "epoch"
LAST_ID_FIELD = "last_id"
TERMINAL_FIELD = "terminal"
#: A canvas job's progress in basis points, summed by the store from its children (internal).
PROGRESS_BP_FIELD = "progress_bp"
#: Room the job's declared zones added to its history bound (internal to the store).
STREAM_BUDGET_FIELD = "stream_budget"
STATUS_FIELD = "status"
ATTEMPT_FIELD = "attempt"
OWNER_FIELD = "owner"
DOCUMENT_FIELD = "document_id"


class ZoneState(BaseModel):
    """A zone as the snapshot knows it: declared shape plus latest progress."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)
    zone_id: str
    index: int
    page: int | None = None
    kind: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    status: ZoneStatus = ZoneStatus.PENDING
    processing_tool: str | None = None
    confidence: float | None = None
    duration_ms: int | None = None
    error: str | None = None
    summary: str | None = None


class ExportState(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)
    export_id: str
    format: ExportFormat
    status: str = Field(description="started, completed or failed")
    percent: float = 0
    size_bytes: int | None = None
    filename: str | None = None
    error_message: str | None = None


class JobSnapshot(BaseModel):
    """Latest state of one job plus its stream position (``epoch``, ``last_id``).

    A client that renders this and then subscribes with ``(epoch, last_id)`` misses nothing.
    """

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)
    job_id: str
    epoch: str
    last_id: str
    status: JobStatus = JobStatus.QUEUED
    owner: str | None = None
    document_id: str | None = None
    parent_id: str | None = None
    root_id: str | None = None
    task_name: str | None = None
    attempt: int = 0
    percent: float = 0
    current_operation: str | None = None
    current_zone: str | None = None
    zones_completed: int = 0
    zones_total: int = 0
    eta_s: float | None = None
    result_summary: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    created_ts: float | None = None
    updated_ts: float | None = None
    pages: list[PageInfo] = Field(default_factory=list)
    zones: list[ZoneState] = Field(default_factory=list, description="In index order.")
    exports: list[ExportState] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[str, str]) -> JobSnapshot:
        """Build the snapshot from ``HGETALL`` output (decoded strings)."""
        data: dict[str, Any] = {"job_id": job_id}
        zones: dict[str, dict[str, Any]] = {}
        exports: dict[str, dict[str, Any]] = {}
        pages: list[dict[str, Any]] = []
        for field, value in raw.items():
            if field in (EPOCH_FIELD, LAST_ID_FIELD):
                data[field] = value
            elif field in (TERMINAL_FIELD, PROGRESS_BP_FIELD, STREAM_BUDGET_FIELD):
                continue
            elif field.startswith("zone:"):
                zone_id, _, _part = field[5:].rpartition(":")
                zones.setdefault(zone_id, {"zone_id": zone_id}).update(json.loads(value))
            elif field.startswith("export:"):
                exports[field[7:]] = json.loads(value)
            elif field.startswith("page:"):
                pages.append(json.loads(value))
            else:
                data[field] = json.loads(value)
        data["zones"] = sorted(
            (z for z in zones.values() if "index" in z), key=lambda z: z["index"]
        )
        data["exports"] = list(exports.values())
        data["pages"] = sorted(pages, key=lambda p: int(p["number"]))
        return cls.model_validate(data)


_encode_str = json.encoder.encode_basestring_ascii


def _encode_scalar_str(value: str) -> str:
    return str(_encode_str(value))


#: Encoders of the exact types snapshot values usually have (one dict lookup, no isinstance
#: chain: this runs for every value of every append). Others take :func:`_encode`'s slow path.
_ENCODERS: dict[type, Callable[[Any], str]] = {
    str: _encode_scalar_str,
    JobStatus: _encode_scalar_str,
    ZoneStatus: _encode_scalar_str,
    int: int.__repr__,
    float: float.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _value: "null",
}


def _encode(value: Any) -> str:
    """JSON text of one snapshot value; scalars take a fast path (this runs on every append)."""
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    if isinstance(value, str):
        return str(_encode_str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def snapshot_fields(event: ProgressEvent) -> dict[str, str]:
    """What ``event`` changes in the snapshot hash: ``field → JSON text``.

    ``status`` is written by lifecycle events only, and the append script keeps it unchanged
    once the job has its terminal event.
    """
    return {k: _encode(v) for k, v in _changes(event).items()}


def packed_snapshot_fields(event: ProgressEvent) -> str:
    """:func:`snapshot_fields` as the append script takes it: ``field NUL value NUL ...``."""
    encoder = _ENCODERS.get  # inlined: one call less per value
    return "\0".join(
        [
            k + "\0" + (enc(v) if (enc := encoder(type(v))) is not None else _encode(v))
            for k, v in _changes(event).items()
        ]
    )


def _changes(event: ProgressEvent) -> dict[str, Any]:
    """:func:`snapshot_fields` before its values are encoded."""
    out: dict[str, Any] = {"updated_ts": event.ts}
    for name in ("owner", "document_id", "parent_id", "root_id"):
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    match event:
        case ProcessingQueued():
            out.update(status=JobStatus.QUEUED, task_name=event.task_name, created_ts=event.ts)
        case ProcessingStarted():
            out.update(status=JobStatus.STARTED, attempt=event.attempt)
        case ProcessingRetrying():
            out.update(status=JobStatus.RETRYING, attempt=event.attempt - 1)
        case ProcessingProgress():
            out.update(
                percent=event.percent,
                current_operation=event.current_operation,
                current_zone=event.current_zone,
                eta_s=event.eta_s,
            )
            if event.zones_completed is not None:
                out["zones_completed"] = event.zones_completed
            if event.zones_total is not None:
                out["zones_total"] = event.zones_total
        case ZonesDeclared():
            for zone in event.zones:
                out[f"zone:{zone.zone_id}:info"] = zone.model_dump(exclude={"zone_id"})
            if event.zones_total is not None:
                out["zones_total"] = event.zones_total
        case ZoneProcessing():
            out[f"zone:{event.zone_id}:state"] = {
                "status": ZoneStatus.PROCESSING,
                "processing_tool": event.processing_tool,
            }
            out["current_zone"] = event.zone_id
        case ZoneCompleted():
            out[f"zone:{event.zone_id}:state"] = {
                "status": event.status,
                "processing_tool": event.processing_tool,
                "confidence": event.confidence,
                "duration_ms": event.duration_ms,
                "error": event.error,
                "summary": event.summary,
            }
        case ProcessingCompleted():
            out.update(status=JobStatus.COMPLETED, percent=100.0, eta_s=0.0)
            out.update(result_summary=event.result_summary, current_operation=None)
        case ProcessingFailed():
            out.update(status=JobStatus.FAILED, eta_s=None, current_operation=None)
            out.update(error_type=event.error_type, error_message=event.error_message)
        case ProcessingCancelled():
            out.update(status=JobStatus.CANCELLED, eta_s=None, current_operation=None)
            out["error_message"] = event.reason
        case ExportStarted() | ExportProgress() | ExportCompleted() | ExportFailed():
            out[f"export:{event.export_id}"] = _export_state(event)
    if isinstance(event, ZonesDeclared):
        for page in event.pages:
            out[f"page:{page.number}"] = page.model_dump()
    return out


def _export_state(
    event: ExportStarted | ExportProgress | ExportCompleted | ExportFailed,
) -> dict[str, Any]:
    state: dict[str, Any] = {"export_id": event.export_id, "format": event.format}
    match event:
        case ExportStarted():
            state.update(status="started", percent=0)
        case ExportProgress():
            state.update(status="started", percent=event.percent)
        case ExportCompleted():
            state.update(
                status="completed",
                percent=100,
                size_bytes=event.size_bytes,
                filename=event.filename,
            )
        case ExportFailed():
            state.update(status="failed", error_message=event.error_message)
    return state
