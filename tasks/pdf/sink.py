"""Where :func:`tasks.pdf.process_document` reports progress: the :class:`ProgressSink` protocol
(defined in :mod:`progress_bridge.sink`, re-exported here) and two implementations.

The Celery task passes its ``ProgressTask`` reporter, which has these four methods; tests pass a
:class:`RecordingSink`; benchmarks a :class:`NullSink`. The order of calls is part of the
contract (and what :class:`RecordingSink` lets tests check):

1. ``declare_zones`` once per page of the range, in page order, before any of that page's zones
   is processed; it carries that page's zones (possibly none) and its :class:`PageInfo`. Zones are
   declared page by page, not all up front, so memory stays flat on long documents; the total
   grows as pages are analysed.
2. For each declared zone, in reading order: ``zone_processing`` then ``zone_completed``, exactly
   once each, never interleaved with another zone's.
3. ``set_progress`` between those, with a percent that never decreases (0 to 100 over the
   requested page range) and the current operation, e.g. ``"Extracting table p3-z2"``.

A sink must not raise for reporting problems (progress is advisory); an exception it raises
stops processing and propagates to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from progress_bridge.capture.sink import ProgressSink
from progress_bridge.events import PageInfo, ZoneInfo

__all__ = ["NullSink", "ProgressSink", "RecordedCall", "RecordingSink"]


class NullSink:
    """Reports nothing (benchmarks, batch use)."""

    def declare_zones(self, zones: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None:
        pass

    def zone_processing(self, zone_id: str, *, tool: str) -> None:
        pass

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
    ) -> None:
        pass

    def set_progress(self, percent: float | None = None, *, operation: str | None = None) -> None:
        pass


@dataclass(frozen=True)
class RecordedCall:
    """One sink call: the method name and its arguments by name."""

    method: str
    args: dict[str, Any]


@dataclass
class RecordingSink:
    """Keeps every call in order, for tests."""

    calls: list[RecordedCall] = field(default_factory=list)

    def declare_zones(self, zones: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None:
        self.calls.append(
            RecordedCall("declare_zones", {"zones": list(zones), "pages": list(pages)})
        )

    def zone_processing(self, zone_id: str, *, tool: str) -> None:
        self.calls.append(RecordedCall("zone_processing", {"zone_id": zone_id, "tool": tool}))

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
    ) -> None:
        self.calls.append(
            RecordedCall(
                "zone_completed",
                {
                    "zone_id": zone_id,
                    "tool": tool,
                    "confidence": confidence,
                    "duration_ms": duration_ms,
                    "status": status,
                    "error": error,
                    "summary": summary,
                },
            )
        )

    def set_progress(self, percent: float | None = None, *, operation: str | None = None) -> None:
        self.calls.append(
            RecordedCall("set_progress", {"percent": percent, "operation": operation})
        )

    def of(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call to ``method``, in order."""
        return [call.args for call in self.calls if call.method == method]

    @property
    def declared(self) -> list[ZoneInfo]:
        return [zone for args in self.of("declare_zones") for zone in args["zones"]]
