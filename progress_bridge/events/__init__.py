"""What happens to a job, as data: the event schema, the job snapshot, ids and coalescing policy.

Pure: pydantic models and functions, no I/O. Every other part of the library (the store, the
capture side in Celery workers, the bridge) and the generated TypeScript types build on this.

- :mod:`.schema` — the event models and :data:`ProgressEvent`, their discriminated union;
- :mod:`.snapshot` — :class:`JobSnapshot`, a job's latest state, and what each event changes;
- :mod:`.records` — :class:`StoredEntry` and :class:`Replay`, the store's plain answers;
- :mod:`.ids` — stream ids and their order; :mod:`.policy` — terminal and coalesced types;
- :mod:`.jsonschema` — the JSON Schema the TypeScript types are generated from.
"""

from .ids import StreamId, is_after, parse_stream_id
from .jsonschema import json_schema
from .policy import COALESCED_TYPES, NEVER_DROPPED, TERMINAL_TYPES, coalesce_key
from .records import Replay, StoredEntry
from .schema import (
    JOB_ID_PATTERN,
    SCHEMA_VERSION,
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
    ZoneInfo,
    ZoneProcessing,
    ZonesDeclared,
    ZoneStatus,
    event_adapter,
    parse_event,
)
from .snapshot import ExportState, JobSnapshot, ZoneState

__all__ = [
    "COALESCED_TYPES",
    "JOB_ID_PATTERN",
    "NEVER_DROPPED",
    "SCHEMA_VERSION",
    "TERMINAL_TYPES",
    "ExportCompleted",
    "ExportFailed",
    "ExportFormat",
    "ExportProgress",
    "ExportStarted",
    "ExportState",
    "JobSnapshot",
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
    "Replay",
    "StoredEntry",
    "StreamId",
    "ZoneCompleted",
    "ZoneInfo",
    "ZoneProcessing",
    "ZoneState",
    "ZoneStatus",
    "ZonesDeclared",
    "coalesce_key",
    "event_adapter",
    "is_after",
    "json_schema",
    "parse_event",
    "parse_stream_id",
]
