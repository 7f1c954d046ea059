"""The JSON Schema of every event and of the job snapshot: the input of the TypeScript generator
(``scripts/gen_types``), so the pydantic models stay the one definition of the wire."""

from __future__ import annotations

from typing import Any

from .schema import event_adapter
from .snapshot import JobSnapshot

__all__ = ["json_schema"]


def json_schema() -> dict[str, Any]:
    """JSON Schema of every event (and the snapshot), with shared definitions under ``$defs``."""
    # Serialization mode: a field with a default is always present on the wire, so consumers
    # (the generated TypeScript types) see it as required rather than optional.
    schema = event_adapter.json_schema(ref_template="#/$defs/{model}", mode="serialization")
    defs = schema.setdefault("$defs", {})
    snap = JobSnapshot.model_json_schema(ref_template="#/$defs/{model}", mode="serialization")
    defs.update(snap.pop("$defs", {}))
    defs["JobSnapshot"] = snap
    schema["title"] = "ProgressEvent"
    return schema
