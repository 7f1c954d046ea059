"""A demo job that walks a fake document's zones with realistic timings.

Lets a person watch a job with ``progress-bridge tail`` before the PDF tasks exist, and gives the
tests a real task to run. The work is a plain function taking a progress reporter; the Celery
tasks only wire it to :class:`~progress_bridge.capture.task.ProgressTask`.

Timings per zone kind (seconds at ``speed=1``): text 0.15, table 0.8, figure 0.4, scaled by
``1 / speed`` so tests run the same walk in milliseconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from progress_bridge.capture.sink import ProgressSink
from progress_bridge.capture.task import ProgressTask
from progress_bridge.events import PageInfo, ZoneInfo

from .app import app

__all__ = ["DemoFailure", "fake_document", "walk", "walk_document", "walk_document_once"]

ZONE_SECONDS = {"text": 0.15, "table": 0.8, "figure": 0.4}
TOOLS = {"text": "pdfplumber.words", "table": "pdfplumber.tables", "figure": "pypdfium2.render"}


class DemoFailure(RuntimeError):
    """Raised on purpose by the demo (``fail_at``), to show a failed job."""


def fake_document(
    pages: int, zones_per_page: int, seed: int = 0
) -> tuple[list[ZoneInfo], list[PageInfo]]:
    """Zones of a made-up A4 document: mostly text, some tables and figures."""
    rng = random.Random(seed)
    zones: list[ZoneInfo] = []
    for page in range(1, pages + 1):
        for z in range(zones_per_page):
            kind = rng.choices(("text", "table", "figure"), weights=(6, 2, 1))[0]
            top = 60 + z * (700 / zones_per_page)
            zones.append(
                ZoneInfo(
                    zone_id=f"p{page}-z{z}",
                    index=len(zones),
                    page=page,
                    kind=kind,
                    bbox=(50.0, top, 545.0, top + 600 / zones_per_page),
                )
            )
    return zones, [PageInfo(number=n, width=595.0, height=842.0) for n in range(1, pages + 1)]


def walk(
    progress: ProgressSink,
    *,
    pages: int = 3,
    zones_per_page: int = 4,
    speed: float = 1.0,
    fail_at: int | None = None,
    steps_per_zone: int = 4,
) -> dict[str, Any]:
    """Walk every zone, reporting as a real extractor would; return a small result.

    Args:
        speed: timing multiplier (10 = ten times faster than realistic).
        fail_at: raise :class:`DemoFailure` when reaching this zone index.
        steps_per_zone: intermediate ``set_progress`` calls per zone (exercise coalescing).
    """
    zones, page_infos = fake_document(pages, zones_per_page)
    progress.declare_zones(zones, page_infos)
    rng = random.Random(1)
    for zone in zones:
        if fail_at is not None and zone.index == fail_at:
            raise DemoFailure(f"demo failure at zone {zone.zone_id}")
        kind = zone.kind or "text"
        tool = TOOLS[kind]
        progress.zone_processing(zone.zone_id, tool=tool)
        seconds = ZONE_SECONDS[kind] * rng.uniform(0.7, 1.3) / speed
        began = time.monotonic()
        for step in range(steps_per_zone):
            time.sleep(seconds / steps_per_zone)
            progress.set_progress(operation=f"{kind} {zone.zone_id} step {step + 1}")
        progress.zone_completed(
            zone.zone_id,
            tool=tool,
            confidence=round(rng.uniform(0.8, 0.99), 2),
            duration_ms=int((time.monotonic() - began) * 1000),
            summary=f"{kind} zone {zone.zone_id}",
        )
    return {"zones": len(zones), "pages": pages, "summary": f"{len(zones)} zones on {pages} pages"}


# celery ships no type hints: give its decorator a type once
_task: Callable[..., Callable[[Callable[..., Any]], Any]] = app.task


@_task(base=ProgressTask, bind=True, name="tasks.demo.walk_document")
def walk_document(self: ProgressTask, **options: Any) -> dict[str, Any]:
    """The demo job; a killed worker redelivers it (a new attempt). Options: see :func:`walk`."""
    return walk(self.progress, **options)


@_task(
    base=ProgressTask, bind=True, name="tasks.demo.walk_document_once", reject_on_worker_lost=False
)
def walk_document_once(self: ProgressTask, **options: Any) -> dict[str, Any]:
    """The same walk for a job that must not run twice: a killed worker ends it failed (lost)."""
    return walk(self.progress, **options)
