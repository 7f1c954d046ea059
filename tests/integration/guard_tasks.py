"""A task stuck in C code under a PDF task's guard (:func:`tasks.pdf_tasks.job_guard`), for the
prefork worker of ``test_pdf_bounds.py`` (``-I tests.integration.guard_tasks``).

``hashlib.pbkdf2_hmac`` runs its whole loop in C (about 4 M iterations a second here, the GIL
released) without returning to Python, so no Python signal handler can run in it: like PDFium
rendering a huge page, or zlib inflating a huge stream, it can only be stopped by terminating
its process. The task is its own job (its task id), failed by the guard's report when stuck.
"""

from __future__ import annotations

import hashlib
from typing import Any

from progress_bridge.capture.producer import capture_for
from progress_bridge.capture.task import ProgressTask
from progress_bridge.events import ProcessingFailed
from tasks.app import app
from tasks.pdf import LimitExceeded
from tasks.pdf_tasks import StopCheck, job_guard, settings_of

__all__ = ["stuck_in_c"]


@app.task(base=ProgressTask, bind=True, name="tests.guard_tasks.stuck_in_c")  # type: ignore[untyped-decorator]
def stuck_in_c(self: Any, iterations: int) -> str:
    """Hash for ``iterations`` rounds under the guard a PDF task runs with."""
    capture = capture_for(self.app)
    job_id = self.request.id
    stop = StopCheck(capture, job_id, settings_of(self.app).cancel_poll_s)

    def report(failure: LimitExceeded) -> None:
        capture.send(
            ProcessingFailed(
                job_id=job_id, error_type=type(failure).__name__, error_message=failure.reason
            )
        )

    with job_guard(self, stop, report, None):
        return hashlib.pbkdf2_hmac("sha256", b"password", b"salt", iterations).hex()
