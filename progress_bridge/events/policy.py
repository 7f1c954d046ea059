"""Which events end a job and which may be coalesced: one definition for every layer.

The producer's outage buffer (:mod:`progress_bridge.capture.outage`) and the bridge's per-connection
outbox (:mod:`progress_bridge.bridge.core.outbox`) both replace a queued update with a newer one
of the same :func:`coalesce_key` ("latest wins") and never drop anything else. Pure; no I/O.
"""

from __future__ import annotations

from typing import get_args

from .schema import ProgressEvent

__all__ = ["ALL_TYPES", "COALESCED_TYPES", "NEVER_DROPPED", "TERMINAL_TYPES", "coalesce_key"]


def _event_types() -> frozenset[str]:
    union = get_args(ProgressEvent)[0]
    return frozenset(model.model_fields["type"].default for model in get_args(union))


#: Every event type of the schema.
ALL_TYPES = _event_types()
#: Types that end a job; each job has exactly one of them.
TERMINAL_TYPES = frozenset({"processing_completed", "processing_failed", "processing_cancelled"})
#: Types a lagging queue may coalesce per job (and export): only the newest one matters.
COALESCED_TYPES = frozenset({"processing_progress", "export_progress"})
#: Every other type: delivered in order, never dropped (zones, lifecycle, terminal events).
NEVER_DROPPED = ALL_TYPES - COALESCED_TYPES

#: A coalescing key: events with the same key replace each other while queued.
CoalesceKey = tuple[str, str, str]


def coalesce_key(job_id: str, event_type: str, export_id: str | None) -> CoalesceKey | None:
    """The key under which a queued event is replaced by a newer one; None: never dropped."""
    if event_type in COALESCED_TYPES:
        return (job_id, event_type, export_id or "")
    return None
