"""How ``tail`` shows a job: JSON lines for programs, a live progress line for people."""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Protocol, TextIO

from ..events.records import StoredEntry
from ..events.schema import (
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
from ..events.snapshot import JobSnapshot
from .output import out

__all__ = ["JsonLines", "LiveView", "TailView", "progress_line"]


class TailView(Protocol):
    """Where ``tail`` sends what it reads."""

    #: Whether :meth:`stored` needs the event parsed (JSON lines print the stored text).
    parses: bool

    def snapshot(self, snap: JobSnapshot) -> None: ...

    def stored(self, entry: StoredEntry) -> None: ...

    def event(self, event: ProgressEvent) -> None: ...

    def close(self) -> None: ...


class JsonLines:
    """One JSON object per line: each event with its ``id`` and ``epoch``; a snapshot as
    ``{"op": "snapshot", "snapshot": {...}}``."""

    parses = False

    def snapshot(self, snap: JobSnapshot) -> None:
        out(json.dumps({"op": "snapshot", "snapshot": snap.model_dump(mode="json")}))

    def stored(self, entry: StoredEntry) -> None:
        out(entry.wire_json())

    def event(self, event: ProgressEvent) -> None:
        out(event.model_dump_json())

    def close(self) -> None:
        return None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_line(
    percent: float, eta_s: float | None, done: int, total: int, operation: str | None, width: int
) -> str:
    """``[████░░░░]  62.0%  ETA 0:41  zones 64/103  Extracting text``, cut to ``width``."""
    bar_width = max(10, min(30, width // 4))
    filled = int(bar_width * max(0.0, min(100.0, percent)) / 100)
    bar = "█" * filled + "░" * (bar_width - filled)
    text = f"[{bar}] {percent:5.1f}%  ETA {_clock(eta_s)}  zones {done}/{total}"
    if operation:
        text += f"  {operation}"
    return text[:width]


class LiveView:
    """A progress line redrawn in place, with a line above it for each lifecycle event."""

    parses = True

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.percent = 0.0
        self.eta_s: float | None = None
        self.done = 0
        self.total = 0
        self.operation: str | None = None
        self._drawn = False

    def snapshot(self, snap: JobSnapshot) -> None:
        self.percent, self.eta_s = snap.percent, snap.eta_s
        self.done, self.total = snap.zones_completed, snap.zones_total
        self.operation = snap.current_operation or snap.current_zone
        self._line(
            f"{snap.job_id}: {snap.status.value}"
            + (f" ({snap.task_name})" if snap.task_name else "")
        )

    def stored(self, entry: StoredEntry) -> None:
        self.event(entry.event())

    def event(self, event: ProgressEvent) -> None:
        match event:
            case ProcessingProgress():
                self.percent, self.eta_s = event.percent, event.eta_s
                if event.zones_completed is not None:
                    self.done = event.zones_completed
                if event.zones_total is not None:
                    self.total = event.zones_total
                self.operation = event.current_operation or self.operation
            case ZonesDeclared():
                self.total = event.zones_total if event.zones_total is not None else self.total
            case ZoneProcessing():
                self.operation = f"{event.processing_tool} {event.zone_id}"
            case ZoneCompleted():
                if event.status == ZoneStatus.FAILED:
                    self._line(f"zone {event.zone_id} failed: {event.error or 'no reason given'}")
            case ProcessingQueued():
                self._line(f"queued ({event.task_name})")
            case ProcessingStarted():
                self._line(
                    f"started, attempt {event.attempt}"
                    + (f" on {event.worker}" if event.worker else "")
                )
            case ProcessingRetrying():
                self._line(f"retrying (attempt {event.attempt} next): {event.reason}")
            case ProcessingCompleted():
                self.percent, self.eta_s, self.operation = 100.0, 0.0, None
                took = f" in {event.duration_ms / 1000:.1f} s" if event.duration_ms else ""
                self._line(
                    f"completed{took}"
                    + (f": {event.result_summary}" if event.result_summary else "")
                )
            case ProcessingFailed():
                self.operation = None  # an ended job does nothing (as the page shows it)
                lost = " (worker lost)" if event.lost else ""
                self._line(f"failed{lost}: {event.error_type}: {event.error_message}")
            case ProcessingCancelled():
                self.operation = None
                self._line(f"cancelled: {event.reason or 'revoked'}")
        self._draw()

    def _line(self, text: str) -> None:
        """A line of its own above the progress line."""
        self._clear()
        self.stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self._draw()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[2K")
            self._drawn = False

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write(
            "\r\033[2K"
            + progress_line(self.percent, self.eta_s, self.done, self.total, self.operation, width)
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
