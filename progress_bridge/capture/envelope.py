"""Who a job's events are about: the message headers progress-bridge reads, and the envelope
(job, parent, root, owner, document) every event of a run carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events.snapshot import PROGRESS_BP_FIELD

__all__ = [
    "HEADER_DOCUMENT",
    "HEADER_OWNER",
    "HEADER_PARENT",
    "HEADER_WEIGHT",
    "PROGRESS_BP",
    "envelope_of",
    "parent_envelope",
    "valid_weight",
]

#: Message headers read by the worker and the publish signal.
HEADER_OWNER = "progress_owner"
HEADER_DOCUMENT = "progress_document"
HEADER_PARENT = "progress_parent"
#: A canvas child's share of its parent job (0 < weight <= 1), for the parent's percent.
HEADER_WEIGHT = "progress_weight"
#: Snapshot counter of a canvas job's progress in basis points, summed from its children.
PROGRESS_BP = PROGRESS_BP_FIELD


def envelope_of(request: Any) -> dict[str, Any]:
    """Envelope fields of events about the job running under ``request`` (a Celery Context)."""
    parent = getattr(request, HEADER_PARENT, None) or getattr(request, "parent_id", None)
    return {
        "job_id": request.id,
        "parent_id": parent,
        "root_id": getattr(request, "root_id", None),
        "owner": getattr(request, HEADER_OWNER, None) or None,
        "document_id": getattr(request, HEADER_DOCUMENT, None) or None,
    }


def valid_weight(value: Any) -> float | None:
    """A child's share of its parent (a header, so untrusted): 0 < weight <= 1, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    weight = float(value)
    return weight if 0.0 < weight <= 1.0 else None


def parent_envelope(child: Mapping[str, Any], parent_id: str) -> dict[str, Any]:
    """Envelope of the events a canvas child writes to its parent job's stream.

    They are the parent's events: ``job_id`` is the parent, which has no parent of its own here,
    and its root is the canvas root (the child's ``root_id``, unless the child is itself the root
    because it was published on its own). Owner and document are left out: the child carries
    none (a canvas child never enters its user's job list), the parent's snapshot keeps its own,
    and readers take them from there (an owner here would also index the parent under it).
    """
    root = child.get("root_id")
    return {
        "job_id": parent_id,
        "parent_id": None,
        "root_id": root if root not in (None, child["job_id"]) else None,
        "owner": None,
        "document_id": None,
    }
