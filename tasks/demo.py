"""The demo: a real PDF job to watch, and a fake-document walk for tests.

:func:`submit_pdf_demo` is what ``progress-bridge dev --demo`` submits (the ``demo_task``
setting): the 12-page report in ``tasks/data`` (:mod:`tasks.demo_document`) stored as an upload
and run through the real PDF job (:func:`tasks.pdf_tasks.process_pdf`), paced to last about
:data:`DEMO_SECONDS` (``speed`` 2 halves that) so a person can watch it on the page, in Flower
and with ``progress-bridge tail``. Every zone is really extracted; only pauses are added.

:func:`walk_document` walks a fake document's zones with realistic timings (seconds per zone at
``speed=1``: text 0.15, table 0.8, figure 0.4, scaled by ``1 / speed``): a task the tests run in
milliseconds. The work is a plain function taking a progress reporter; the Celery tasks only
wire it to :class:`~progress_bridge.capture.task.ProgressTask`.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from progress_bridge.capture.producer import forget_capture
from progress_bridge.capture.sink import ProgressSink
from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import PageInfo, ZoneInfo

from .app import app
from .demo_document import DEMO_NAME, DEMO_PAGES, DEMO_PDF
from .limits import limits_of
from .pdf_tasks import JobFiles, process_pdf

__all__ = [
    "DEMO_SECONDS",
    "DemoFailure",
    "fake_document",
    "submit_pdf_demo",
    "walk",
    "walk_document",
    "walk_document_once",
]

#: How long the PDF demo lasts at ``speed=1`` (seconds, about; the pacing is per page).
DEMO_SECONDS = 60.0

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


def submit_pdf_demo(settings: Settings, *, owner: str, speed: float = 1.0) -> str:
    """Store the demo report as an upload and publish its PDF job; return the job id.

    As ``POST /api/jobs`` does (generated job id, the file under ``uploads/<job>.pdf``, the job
    owned by ``owner``), with ``pace_s`` so the job lasts about ``DEMO_SECONDS / speed``.
    Points the Celery app at ``settings`` (its Redis URL, or Celery's own URLs) first: the
    caller may have loaded the configuration before the server existed.
    """
    if speed <= 0:
        raise ValueError(f"speed must be above 0, got {speed!r}")
    url = settings.redis_url
    broker = settings.celery_broker_url or url
    app.conf.update(
        broker_url=broker,
        result_backend=settings.celery_result_backend or url,
        progress_settings=settings,
    )
    # A process that used the app before (its connection pool, its progress producer) would
    # still publish to the old servers: publish on a connection to these, with a new producer.
    forget_capture(app)
    job_id = f"pdf-{uuid.uuid4().hex}"
    target = JobFiles(settings.data_dir).upload(job_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(DEMO_PDF.read_bytes())
    pace_s = DEMO_SECONDS / DEMO_PAGES / speed
    # The job's time limits (tasks.limits) count processing time per page: add the pauses.
    soft, hard = limits_of(app).time_limits(DEMO_PAGES)
    paused = math.ceil(DEMO_PAGES * pace_s)
    with app.connection_for_write(broker) as connection:
        process_pdf.submit(
            job_id,
            DEMO_NAME,
            owner=owner,
            document_id=DEMO_NAME,
            task_id=job_id,
            kwargs={"pace_s": pace_s},
            soft_time_limit=soft + paused,
            time_limit=hard + paused,
            connection=connection,
        )
    return job_id
