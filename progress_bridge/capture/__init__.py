"""The Celery side: what a task reports and the lifecycle Celery's signals add, written to the
store through a per-process producer that never lets a Redis problem fail a task.

- :class:`~.task.ProgressTask` — the one-line base class (``base=ProgressTask``);
- :class:`~.reporter.ProgressReporter` — the four progress calls a run makes (a
  :class:`~.sink.ProgressSink` for plain functions); their coalesced writing to the stream and
  to Celery's state is its base, :class:`~.progress_writer.ProgressWriter`;
- :mod:`.signals` — queued, started, retrying, completed, failed, cancelled, without task code;
- :mod:`.producer` — :class:`~.producer.Capture` (store, outage buffer, counters per process)
  and :func:`~.producer.record_event` for events an application writes by hand;
- :mod:`.outage` and :mod:`.celery_state` — why Redis never holds a task longer than one
  connect + read timeout, once per outage (the store, the result backend and the broker alike);
- :mod:`.liveness` and :mod:`.reaper` — running jobs' leases, renewed by their process; jobs
  whose process is gone ended (failed, lost) or redelivered; jobs Redis lost re-stated.

Names are imported on first use (``ProgressTask`` needs Celery).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["Capture", "ProgressReporter", "ProgressSink", "ProgressTask", "record_event"]

_LAZY = {
    "Capture": ".producer",
    "ProgressReporter": ".reporter",
    "ProgressSink": ".sink",
    "ProgressTask": ".task",
    "record_event": ".producer",
}

if TYPE_CHECKING:
    from .producer import Capture, record_event
    from .reporter import ProgressReporter
    from .sink import ProgressSink
    from .task import ProgressTask


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
