"""Celery's own view of a running job: the ``PROGRESS`` state and a ``task-progress`` event.

The same numbers as the stream, so ``AsyncResult.info`` and Flower agree with the page. Both are
advisory: a result backend or broker that fails is counted and logged, never raised to the task.
"""

from __future__ import annotations

import logging
from typing import Any

from .outage import CaptureStats

__all__ = ["PROGRESS_STATE", "publish_progress"]

log = logging.getLogger("progress_bridge.capture")

#: The Celery state of a running job that reports progress.
PROGRESS_STATE = "PROGRESS"


def publish_progress(
    task: Any, job_id: str, meta: dict[str, Any], *, hostname: str | None, stats: CaptureStats
) -> None:
    """Store ``meta`` as the task's ``PROGRESS`` state and send it as a ``task-progress`` event."""
    try:
        task.update_state(task_id=job_id, state=PROGRESS_STATE, meta=meta)
    except Exception as exc:  # the result backend is advisory here too
        stats.redis_errors += 1
        log.warning("update_state(PROGRESS) failed for %s: %s", job_id, exc)
    try:
        # Not task.send_event: that reads the thread-local request, and this may run on the
        # trailing-flush thread. No retries: progress never waits for the broker.
        with task.app.events.default_dispatcher(hostname=hostname) as dispatcher:
            dispatcher.send("task-progress", uuid=job_id, retry=False, **meta)
    except Exception as exc:
        stats.redis_errors += 1
        log.warning("task-progress event failed for %s: %s", job_id, exc)
