"""PDF jobs as Celery tasks: thin wrappers around :mod:`tasks.pdf`, wired to ``ProgressTask``.

One job is one :func:`process_pdf` task; its Celery task id is the job id the user watches.

* **Small documents** (at most ``settings.canvas_page_threshold`` pages) are processed in the job
  task itself with ``self.progress`` as the sink. Its lifecycle comes from the signal handlers
  (:mod:`progress_bridge.capture.signals`): started, then completed (task_success) or failed
  (task_failure).
* **Large documents** fan out: the job task publishes a chord of
  :func:`process_pages` subtasks (``settings.pages_per_subtask`` pages each) whose body is
  :func:`finish_canvas`. Each child is published with the ``progress_parent`` header, so its
  zones go to the job's stream and its zone counters are summed into the job's snapshot by the
  store (aggregated progress as events arrive, no polling of children). Children carry no owner:
  they have their own streams (queued/started/... for operators) but never enter the user's
  owner index, so ``GET /api/jobs`` and ``user:`` rooms only show the job. Parts declare their
  zones page by page, so the job's ``zones_total`` grows while it runs; its ``percent`` is
  therefore not completed / total but page-weighted: each part is published with its share of
  the document (``progress_weight`` header: its pages / the document's pages) and adds its own
  rising percent, scaled by that share, to the job's ``progress_bp`` counter in the same atomic
  append. The job's percent only rises, stays below 100 while it runs, and reads 100 with
  ``processing_completed``; its progress events carry the part's current operation.

Exactly one terminal event on the job (DESIGN invariant 5), for the canvas:

* The job task then raises ``Ignore``: Celery sends neither task_success nor task_failure for
  it, so the signal handlers write no terminal event for it. The chord body runs under an id of
  its own (``<job>-merge``; not ``Task.replace``, which gives the body the job's id, so Flower
  showed the job's row as ``finish_canvas`` and lost ``process_pdf``): Flower lists the job as
  ``process_pdf``, each part and the body as rows of their own.
* The body (:func:`finish_canvas`) is a plain task (no lifecycle signals) that writes
  ``processing_completed`` on the job after merging the parts, and records the job's end in
  Celery (result backend and task event: ``mark_succeeded`` of
  :mod:`progress_bridge.capture.celery_state`), so ``AsyncResult(job_id).get()`` returns the
  merged result and Flower shows SUCCESS. A failed or cancelled canvas job likewise ends FAILURE
  or REVOKED in both (:func:`canvas_failed`).
* A failing child writes ``processing_failed`` on the job with its page range and reason, before
  Celery records the failure; the chord errback (:func:`canvas_failed`, on the body) writes the
  same for failures a child cannot report itself (a lost worker) once every part has returned.
* A cancel (``DELETE /api/jobs/{id}``) writes ``processing_cancelled`` first, then revokes the
  job and its children. Running parts poll the job's terminal state (``should_stop``, every
  ``settings.cancel_poll_s``) and stop; queued parts are dropped by the worker as revoked. On a
  prefork worker a part in the middle of a long page is interrupted by its guard
  (:mod:`tasks.guard`) and, if even that does not stop it, terminated. Celery then fails the
  chord with ``ChordError(TaskRevokedError)``, which it logs as an ERROR with a traceback: that
  record becomes one INFO line (:class:`RevokedChordFilter`).
* Whichever of these writes first wins: the store's append script refuses a second terminal event
  atomically (:class:`~progress_bridge.exceptions.DuplicateTerminal`), so races between a cancel,
  a failing child and the body cannot produce two.

Bounds (:class:`~tasks.limits.PdfLimits`, ``docs/operators.md``): every job and part runs under
Celery soft and hard time limits computed from its page count (the job's when it is published,
:meth:`PdfJobTask.apply_async`; the parts' and the merge's when the job fans out), enforced on
the prefork pool by :func:`job_guard` (interrupt at the soft limit, terminate a task stuck in C
code shortly after) and by the pool (the hard limit); a page whose
decompressed content is over ``pdf_max_page_content_bytes`` fails the job before pdfplumber
parses it; a prefork pool process above ``pdf_max_memory_mib`` stops its job. Each ends the job
``processing_failed`` with a :class:`~tasks.pdf.LimitExceeded` reason.

Files live under ``settings.data_dir`` under generated names (:mod:`tasks.files`); messages
carry ids, never paths, so a message cannot make a worker read or write anywhere else. A job's
part ids, revoking and the stop check are :mod:`tasks.job_control`; the completion summary
:mod:`tasks.summary`; the chord log filter :mod:`tasks.chord_logs`.

Why one module: it holds the five tasks of a PDF job and the code only they share (about 550 lines
without this text): their names are part of the wire (``tasks.pdf_tasks.*``, what Flower and
the result backend show), and the canvas's steps read as one story here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from typing import Any, NoReturn

from celery import chord, states
from celery.exceptions import Ignore
from celery.result import AsyncResult, GroupResult
from vine import barrier  # type: ignore[import-untyped]

from progress_bridge.capture.celery_state import (
    mark_failed,
    mark_revoked,
    mark_succeeded,
)
from progress_bridge.capture.envelope import HEADER_PARENT, HEADER_WEIGHT, envelope_of
from progress_bridge.capture.producer import Capture, capture_for
from progress_bridge.capture.reporter import ProgressReporter
from progress_bridge.capture.task import ProgressTask
from progress_bridge.events import (
    ExportFormat,
    ProcessingCompleted,
    ProcessingFailed,
)

from .app import app
from .chord_logs import RevokedChordFilter, install_log_filter
from .files import JobFiles, UploadMissing, read_upload, store_upload, write_json
from .guard import Cause, JobGuard, JobInterrupted
from .job_control import (
    StopCheck,
    children_group_id,
    job_of_part,
    part_id,
    progress_text_of,
    revoke_job,
    settings_of,
    stop_run,
)
from .limits import PdfLimits, limits_of
from .pacing import PacedSink
from .pdf import (
    DocumentResult,
    LimitExceeded,
    MemoryLimitReached,
    PdfRejected,
    TimeLimitReached,
    count_pages,
    export_document,
    merge_results,
    open_document,
    plan_page_ranges,
    process_document,
)
from .pdf import ProcessingCancelled as PdfCancelled
from .pdf.preview import PagePreviews
from .summary import summary_of

__all__ = [
    "JobFiles",
    "PdfJobTask",
    "RevokedChordFilter",
    "StopCheck",
    "UploadMissing",
    "canvas_failed",
    "children_group_id",
    "export_result",
    "finish_canvas",
    "install_log_filter",
    "job_guard",
    "job_of_part",
    "part_id",
    "process_pages",
    "process_pdf",
    "revoke_job",
    "settings_of",
]

log = logging.getLogger("tasks.pdf_tasks")

#: Ids that may become file names: no dots, slashes or colons, so never a path.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ERROR_CHARS = 500
_PART_ID = re.compile(r"^(.+)-p[0-9]+$")


# celery ships no type hints: give its decorator a type once
_task: Callable[..., Callable[[Callable[..., Any]], Any]] = app.task


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PdfRejected):
        return exc.reason[:_ERROR_CHARS]
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:_ERROR_CHARS]


def _paced(progress: Any, pace_s: float, stop: StopCheck) -> Any:
    return PacedSink(progress, pace_s, stop) if pace_s > 0 else progress


class PdfJobTask(ProgressTask):
    """The job's task class: its time limits come from the upload's page count when published.

    The publisher (the web app) has just stored the upload; counting its pages with PDFium
    takes about a millisecond. A job that fans out only validates and splits the document in
    this task, so its pages count up to ``canvas_page_threshold``; an upload that cannot be
    counted gets that limit too (the task will refuse the file quickly). Limits given by the
    caller (``time_limit``, ``soft_time_limit``) are kept.
    """

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> AsyncResult:
        if args and "time_limit" not in options and "soft_time_limit" not in options:
            soft, hard = _job_time_limits(self.app, args[0])
            options.update(soft_time_limit=soft, time_limit=hard)
        return super().apply_async(args, kwargs, **options)


def _job_time_limits(celery_app: Any, upload_id: Any) -> tuple[int, int]:
    settings = settings_of(celery_app)
    threshold = settings.canvas_page_threshold
    try:
        pages = count_pages(JobFiles(settings.data_dir).upload(upload_id))
    except ValueError:  # not a valid id: the task says so
        pages = None
    return limits_of(celery_app).time_limits(min(pages or threshold, threshold))


def job_guard(
    task: Any, stop: StopCheck, report: Callable[[LimitExceeded], None], pages: int | None
) -> JobGuard:
    """The :class:`~tasks.guard.JobGuard` of a running PDF task: its job's end (``stop``), the
    memory limit, the task's soft time limit. Call it on the task's thread.

    Args:
        report: ends the job failed with a bound's reason; called (from the guard's thread)
            when the task is stuck in C code past a bound and about to be terminated.
        pages: what the task processes, for the time limit's reason (``None``: unknown).
    """
    limits = limits_of(task.app)
    timelimit = task.request.timelimit or (None, None)

    def stuck(cause: Cause) -> None:
        if cause is not Cause.ENDED:  # (a job that ended has its terminal event)
            report(_limit_failure(cause, limits, timelimit, pages))

    return JobGuard(
        task.app,
        task.request.id,
        ended=stop,
        max_memory_bytes=limits.max_memory_bytes,
        grace_s=limits.pdf_stop_grace_s,
        soft_limit_s=timelimit[1],
        on_stuck=stuck,
    )


def _limit_failure(
    cause: Cause, limits: PdfLimits, timelimit: Any, pages: int | None
) -> LimitExceeded:
    """The failure a memory or time interrupt ends the run with (``timelimit``: the request's
    ``(hard, soft)``)."""
    if cause is Cause.MEMORY:
        return MemoryLimitReached(limits.max_memory_bytes)
    return TimeLimitReached(float(timelimit[1] or 0), pages)


@_task(base=PdfJobTask, bind=True, name="tasks.pdf_tasks.process_pdf", throws=(PdfRejected,))
def process_pdf(
    self: PdfJobTask, upload_id: str, display_name: str | None = None, pace_s: float = 0.0
) -> Any:
    """The job: validate the upload, then process it here or fan out as a chord.

    Args:
        upload_id: the generated name of the upload (``uploads/<upload_id>.pdf``).
        display_name: the sanitised client file name, shown in summaries and export names.
        pace_s: spend at least this many seconds on each page (the demo, :mod:`tasks.pacing`);
            0 processes as fast as possible.

    Raises:
        PdfRejected: the document cannot be processed (``processing_failed`` with the reason),
            :class:`~tasks.pdf.LimitExceeded` among them.
    """
    settings = settings_of(self.app)
    limits = limits_of(self.app)
    files = JobFiles(settings.data_dir)
    job_id: str = self.request.id
    capture = capture_for(self.app)
    stop = StopCheck(capture, job_id, settings.cancel_poll_s)
    envelope = envelope_of(self.request)

    def report(failure: LimitExceeded) -> None:
        capture.send(
            ProcessingFailed(
                **envelope,
                error_type=type(failure).__name__,
                error_message=failure.reason[:_ERROR_CHARS],
            )
        )

    page_count: int | None = None
    try:
        with (
            job_guard(self, stop, report, None),
            PagePreviews(files.previews_dir(job_id)) as previews,
        ):
            data = read_upload(files, upload_id)
            notes: list[str] = []
            with open_document(data, max_pages=settings.max_pages) as doc:
                page_count = doc.page_count
                if page_count > settings.canvas_page_threshold:
                    # Repair here, once: the parts then read a file pdfminer can lay out, instead
                    # of each repairing it again (and logging its own warning line).
                    doc.prepare_layout()
                    if doc.data is not data:
                        store_upload(files, upload_id, doc.data)
                    notes = list(doc.notes)
            if page_count > settings.canvas_page_threshold:
                return _fan_out(self, upload_id, display_name, page_count, notes, stop, pace_s)
            result = process_document(
                data,
                _paced(self.progress, pace_s, stop),
                max_pages=settings.max_pages,
                should_stop=stop,
                max_page_content_bytes=limits.pdf_max_page_content_bytes,
                observer=previews,
            )
    except PdfCancelled:
        stop_run(self, stop, own_event=False)
    except JobInterrupted as interrupt:
        if interrupt.cause is Cause.ENDED:
            stop_run(self, stop, own_event=False)
        timelimit = self.request.timelimit or (None, None)
        raise _limit_failure(interrupt.cause, limits, timelimit, page_count) from None
    result.source_name = display_name
    write_json(files.result(job_id), result.to_dict())
    # (The last coalesced progress is written by ProgressTask.__call__ as this returns, before
    # Celery stores the result.)
    return summary_of(result, display_name)


def _fan_out(
    task: Any,
    upload_id: str,
    display_name: str | None,
    page_count: int,
    notes: list[str],
    stop: StopCheck,
    pace_s: float = 0.0,
) -> NoReturn:
    """Publish a chord of page-range children, then end the job task (``Ignore``).

    Each part's time limits follow from its pages; the merge gets the base limit. ``notes``
    (the document's, e.g. that it was repaired) go to the merge, which keeps them once.
    """
    settings, limits = settings_of(task.app), limits_of(task.app)
    job_id: str = task.request.id
    group_id = children_group_id(job_id)
    if GroupResult.restore(group_id, app=task.app) is not None:
        # A redelivered message (the worker died right after fanning out): the chord runs.
        raise Ignore(f"job {job_id} already fanned out")
    if stop():
        stop_run(task, stop, own_event=False)
    env = envelope_of(task.request)
    ranges = plan_page_ranges(page_count, settings.pages_per_subtask)
    parts: dict[str, list[int]] = {}
    children = []
    for first, last in ranges:
        child_id = part_id(job_id, first)
        parts[child_id] = [first, last]
        share = (last - first + 1) / page_count  # the part's weight in the job's percent
        soft, hard = limits.time_limits(last - first + 1)
        children.append(
            process_pages.s(upload_id, first, last, job_id=job_id, pace_s=pace_s).set(
                task_id=child_id,
                headers={HEADER_PARENT: job_id, HEADER_WEIGHT: share},
                soft_time_limit=soft,
                time_limit=hard,
            )
        )
    # Saved before anything is published, so a cancel can always find the children to revoke.
    # (An empty ready barrier: the default one would subscribe this worker to every child's
    # result channel.)
    children_result = GroupResult(
        group_id,
        [AsyncResult(cid, app=task.app) for cid in parts],
        app=task.app,
        ready_barrier=barrier(),
    )
    children_result.save(backend=task.backend)
    task.progress.set_progress(0.0, operation=f"Split {page_count} pages into {len(ranges)} parts")
    task.progress.flush()
    meta = {"owner": env["owner"], "document_id": env["document_id"]}
    soft, hard = limits.time_limits(0)
    body = (
        finish_canvas.s(
            job_id=job_id, display_name=display_name, started_ts=time.time(), notes=notes, **meta
        )
        .set(soft_time_limit=soft, time_limit=hard)
        .on_error(canvas_failed.s(job_id=job_id, parts=parts, **meta))
    )
    for callback in task.request.callbacks or []:  # what Task.replace would carry over
        body.link(callback)
    for errback in task.request.errbacks or []:
        body.link_error(errback)
    # The body gets an id of its own, so Flower keeps the job's row as process_pdf (module doc).
    chord(children, body).apply_async(task_id=f"{job_id}-merge")
    raise Ignore(f"job {job_id} fanned out into {len(ranges)} parts")


@_task(
    base=ProgressTask,
    bind=True,
    name="tasks.pdf_tasks.process_pages",
    throws=(PdfRejected,),
    # A rerun would declare its zones to the job a second time (the totals are summed), so a
    # part whose worker died fails the job instead of running again.
    reject_on_worker_lost=False,
)
def process_pages(
    self: ProgressTask,
    upload_id: str,
    first_page: int,
    last_page: int,
    *,
    job_id: str,
    pace_s: float = 0.0,
) -> dict[str, Any]:
    """A canvas child: pages ``first_page..last_page`` of the job's upload.

    Zones and summed counters go to ``job_id`` (the ``progress_parent`` header). On an error it
    fails the job with the page range and reason, then raises (the chord errback's write is then
    refused as a duplicate). When the job has ended meanwhile, it stops (REVOKED).
    """
    settings = settings_of(self.app)
    limits = limits_of(self.app)
    files = JobFiles(settings.data_dir)
    capture = capture_for(self.app)
    stop = StopCheck(capture, job_id, settings.cancel_poll_s)
    pages = last_page - first_page + 1

    def report(failure: LimitExceeded) -> None:
        _report_part_failure(capture, job_id, first_page, last_page, failure)

    try:
        try:
            with (
                job_guard(self, stop, report, pages),
                PagePreviews(files.previews_dir(job_id)) as previews,
            ):
                if stop():
                    raise PdfCancelled()
                result = process_document(
                    read_upload(files, upload_id),
                    _paced(self.progress, pace_s, stop),
                    first_page=first_page,
                    last_page=last_page,
                    max_pages=settings.max_pages,
                    should_stop=stop,
                    max_page_content_bytes=limits.pdf_max_page_content_bytes,
                    observer=previews,
                )
        except JobInterrupted as interrupt:
            if interrupt.cause is Cause.ENDED:
                raise PdfCancelled() from None
            timelimit = self.request.timelimit or (None, None)
            raise _limit_failure(interrupt.cause, limits, timelimit, pages) from None
    except PdfCancelled:
        stop_run(self, stop, own_event=True)
    except Exception as exc:
        self.progress.flush()
        _report_part_failure(capture, job_id, first_page, last_page, exc)
        raise
    # Counters are coalesced: ProgressTask.__call__ writes them as this returns, before the
    # result is stored (storing the last part's result publishes the chord body, which completes
    # the job).
    write_json(files.part(job_id, first_page, last_page), result.to_dict())
    return {"first_page": first_page, "last_page": last_page, "zones": len(result.zones)}


def _part_failed(
    job_id: str, first_page: int, last_page: int, exc: BaseException, **envelope: Any
) -> ProcessingFailed:
    """The job's ``processing_failed`` for a failed part: its page range, then the reason."""
    pages = f"Page {first_page}" if first_page == last_page else f"Pages {first_page}–{last_page}"
    return ProcessingFailed(
        job_id=job_id,
        **envelope,
        error_type=type(exc).__name__,
        error_message=f"{pages}: {_describe(exc)}"[:_ERROR_CHARS],
    )


def _report_part_failure(
    capture: Capture, job_id: str, first_page: int, last_page: int, exc: BaseException
) -> None:
    capture.send(_part_failed(job_id, first_page, last_page, exc))


@_task(bind=True, name="tasks.pdf_tasks.finish_canvas")
def finish_canvas(
    self: Any,
    parts: list[dict[str, Any]],
    *,
    job_id: str,
    display_name: str | None = None,
    started_ts: float | None = None,
    owner: str | None = None,
    document_id: str | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Chord body (``<job>-merge``): merge the parts, complete the job.

    A plain task, so no lifecycle signal writes for it: it writes the job's terminal event
    itself, ``processing_completed`` or, if merging fails, ``processing_failed``, and records the
    job's end in Celery (the job's own task ended with ``Ignore`` when it fanned out). ``notes`` are
    the document's (e.g. that the job repaired it before fanning out), kept once before the
    parts' own.
    """
    settings = settings_of(self.app)
    files = JobFiles(settings.data_dir)
    capture = capture_for(self.app)
    envelope = {"job_id": job_id, "owner": owner, "document_id": document_id}
    ended = StopCheck(capture, job_id, 0.0)
    if ended():  # cancelled after the last part returned: nothing to merge for anyone
        shutil.rmtree(files.parts_dir(job_id), ignore_errors=True)
        reason = f"job ended ({ended.ended}) before its parts were merged"
        _end_in_celery(self, job_id, ended.ended, RuntimeError(reason))
        return {"summary": reason}
    try:
        if files.result(job_id).exists() and not files.parts_dir(job_id).exists():
            # A redelivered body (its worker died after merging): the merge is done.
            merged = DocumentResult.from_dict(json.loads(files.result(job_id).read_text()))
        else:
            results = [
                DocumentResult.from_dict(
                    json.loads(files.part(job_id, p["first_page"], p["last_page"]).read_text())
                )
                for p in parts
            ]
            merged = merge_results(results)
            merged.notes = list(dict.fromkeys([*(notes or []), *merged.notes]))
            merged.source_name = display_name
            write_json(files.result(job_id), merged.to_dict())
    except Exception as exc:
        capture.send(
            ProcessingFailed(
                **envelope,
                error_type=type(exc).__name__,
                error_message=f"The page ranges could not be merged: {_describe(exc)}",
            )
        )
        shutil.rmtree(files.parts_dir(job_id), ignore_errors=True)
        mark_failed(self, job_id, exc, hostname=self.request.hostname)
        raise
    summary = summary_of(merged, display_name)
    summary["parts"] = len(parts)
    duration = None if started_ts is None else max(0, int((time.time() - started_ts) * 1000))
    capture.send(
        ProcessingCompleted(**envelope, result_summary=summary["summary"], duration_ms=duration)
    )
    runtime = None if duration is None else duration / 1000
    mark_succeeded(self, job_id, summary, runtime=runtime, hostname=self.request.hostname)
    # Parts go only after the completion is recorded, so a rerun can always finish the job.
    shutil.rmtree(files.parts_dir(job_id), ignore_errors=True)
    return summary


def _end_in_celery(
    task: Any, job_id: str, ended: str | None, exc: BaseException, hostname: str | None = None
) -> None:
    """Record in Celery (result backend, Flower) how a canvas job ended in its stream:
    REVOKED when it was cancelled, else FAILURE with ``exc``."""
    if ended == "processing_cancelled":
        stopped_at = progress_text_of(capture_for(task.app), job_id)
        mark_revoked(task, job_id, f"job {job_id} cancelled", hostname=hostname, result=stopped_at)
    elif ended != "processing_completed":
        mark_failed(task, job_id, exc, hostname=hostname)


@_task(name="tasks.pdf_tasks.canvas_failed")
def canvas_failed(
    request: Any,
    exc: BaseException,
    traceback: Any,
    *,
    job_id: str,
    parts: dict[str, list[int]],
    owner: str | None = None,
    document_id: str | None = None,
) -> None:
    """Chord errback (new-style: called in the worker with the chord's error): fail the job.

    Runs once every part has returned and one failed or was revoked. The failing part's own
    reason is preferred over the generic ``ChordError``. Usually the job has ended already (a
    part failed it, or it was cancelled and its parts revoked): then it only removes the parts'
    files. Either way it records the job's end in Celery (result backend, Flower): REVOKED when
    it was cancelled, else FAILURE.
    """
    files = JobFiles(settings_of(app).data_dir)
    capture = capture_for(app)
    ended = StopCheck(capture, job_id, 0.0)
    if ended():
        _end_in_celery(canvas_failed, job_id, ended.ended, exc)
        with contextlib.suppress(ValueError):
            shutil.rmtree(files.parts_dir(job_id), ignore_errors=True)
        return
    reason: BaseException = exc
    failed_range: list[int] | None = None
    for child_id, page_range in sorted(parts.items(), key=lambda item: item[1][0]):
        child = AsyncResult(child_id, app=app)
        with contextlib.suppress(Exception):
            if child.state == states.FAILURE and isinstance(child.result, BaseException):
                reason, failed_range = child.result, page_range
                break
    envelope = {"owner": owner, "document_id": document_id}
    if failed_range is not None:
        capture.send(_part_failed(job_id, failed_range[0], failed_range[1], reason, **envelope))
    else:
        capture.send(
            ProcessingFailed(
                job_id=job_id,
                **envelope,
                error_type=type(reason).__name__,
                error_message=_describe(reason),
            )
        )
    # The job's end as its stream has it (normally the failure just written).
    _end_in_celery(canvas_failed, job_id, capture.job_state(job_id)[1], reason)
    with contextlib.suppress(ValueError):
        shutil.rmtree(files.parts_dir(job_id), ignore_errors=True)


@_task(bind=True, name="tasks.pdf_tasks.export_result")
def export_result(
    self: Any, job_id: str, export_id: str, fmt: str, *, owner: str | None = None
) -> dict[str, Any]:
    """Export a completed job's result to ``exports/<export_id>.<ext>``.

    Reports ``export_started``, ``export_progress`` (coalesced) and ``export_completed`` (with
    the download name and size) or ``export_failed`` on the job's stream. Not a ProgressTask: the
    export is part of the job the user watches, not a job of its own.
    """
    settings = settings_of(self.app)
    files = JobFiles(settings.data_dir)
    export_format = ExportFormat(fmt)
    reporter = ProgressReporter(capture_for(self.app), {"job_id": job_id, "owner": owner})
    reporter.export_started(export_id, export_format)
    try:
        try:
            raw = files.result(job_id).read_text()
        except FileNotFoundError:
            raise FileNotFoundError(
                "The job has no result to export: it has not completed, or its files expired."
            ) from None
        result = DocumentResult.from_dict(json.loads(raw))
        output = export_document(
            result,
            export_format,
            on_progress=lambda percent: reporter.export_progress(export_id, export_format, percent),
        )
        target = files.export(export_id, export_format)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(output.data)
        os.replace(tmp, target)
    except Exception as exc:
        message = str(exc) if isinstance(exc, FileNotFoundError) else _describe(exc)
        reporter.export_failed(export_id, export_format, error=message[:_ERROR_CHARS])
        raise
    reporter.export_completed(
        export_id, export_format, size_bytes=len(output.data), filename=output.filename
    )
    return {"export_id": export_id, "filename": output.filename, "size_bytes": len(output.data)}
