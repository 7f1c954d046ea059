"""The four progress calls as a protocol, for plain functions that report without Celery.

:class:`~progress_bridge.task.ProgressReporter` (``self.progress`` in a ``ProgressTask``)
implements it; so can a test double or a no-op. Work written against this protocol stays free of
Celery and Redis: the task only hands its reporter in. No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..events.schema import PageInfo, ZoneInfo

__all__ = ["ProgressSink"]


class ProgressSink(Protocol):
    """Where zone-level progress goes; see ``ProgressReporter`` for each call's contract."""

    def declare_zones(self, zones: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None: ...

    def zone_processing(self, zone_id: str, *, tool: str) -> None: ...

    def zone_completed(
        self,
        zone_id: str,
        *,
        tool: str,
        confidence: float | None = None,
        duration_ms: int | None = None,
        status: str = "completed",
        error: str | None = None,
        summary: str | None = None,
    ) -> None: ...

    def set_progress(
        self, percent: float | None = None, *, operation: str | None = None
    ) -> None: ...
