"""A task that is stuck in C code under a :class:`~tasks.guard.JobGuard`, for the prefork worker
of ``test_pdf_bounds.py`` (``celery -A tasks worker -I tests.integration.guard_tasks``).

``hashlib.pbkdf2_hmac`` runs its whole loop in C (about 4 M iterations a second here) without
returning to Python, so no Python signal handler can run in it: like PDFium rendering a huge
page, or zlib inflating a huge stream, it can only be stopped by terminating its process.
"""

from __future__ import annotations

import hashlib
from typing import Any

from progress_bridge.capture.producer import capture_for
from progress_bridge.capture.task import ProgressTask
from tasks.app import app
from tasks.guard import JobGuard
from tasks.limits import limits_of
from tasks.pdf_tasks import StopCheck, settings_of

__all__ = ["stuck_in_c"]


@app.task(base=ProgressTask, bind=True, name="tests.guard_tasks.stuck_in_c")  # type: ignore[untyped-decorator]
def stuck_in_c(self: Any, iterations: int) -> str:
    """Hash for ``iterations`` rounds under a guard that watches this task's own job, with the
    PDF tasks' poll interval and grace."""
    stop = StopCheck(capture_for(self.app), self.request.id, settings_of(self.app).cancel_poll_s)
    grace_s = limits_of(self.app).pdf_stop_grace_s
    with JobGuard(self.app, self.request.id, ended=stop, max_memory_bytes=None, grace_s=grace_s):
        return hashlib.pbkdf2_hmac("sha256", b"password", b"salt", iterations).hex()
