"""The Celery app of the project's tasks: ``celery -A tasks worker`` finds it as ``tasks.app``.

Configuration lives in ``celeryconfig.py`` (read from Settings). Task modules are listed in
:data:`TASK_MODULES`; a module that is not present yet is skipped. Importing this module needs no
server; starting a worker without ``REDIS_URL`` (or Celery's URLs) fails with a clear message.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from celery import Celery, signals

import progress_bridge.capture.task  # noqa: F401  (connects the lifecycle signal handlers)
from progress_bridge.capture.celery_config import require_broker
from progress_bridge.exceptions import ConfigError

__all__ = ["TASK_MODULES", "app"]

#: Modules whose tasks the worker registers.
TASK_MODULES = ("tasks.demo", "tasks.pdf", "tasks.pdf_tasks")

if importlib.util.find_spec("celeryconfig") is None:
    # Run from outside the checkout (e.g. the console script in another directory): the config
    # module sits next to the `tasks` package.
    sys.path.append(str(Path(__file__).resolve().parent.parent))

app = Celery("tasks")
app.config_from_object("celeryconfig")
app.conf.include = [m for m in TASK_MODULES if importlib.util.find_spec(m) is not None]


@signals.worker_init.connect(weak=False)  # type: ignore[untyped-decorator]
def _check_broker(sender: Any = None, **_: Any) -> None:
    # Signal receivers' exceptions are logged and swallowed by Celery; SystemExit is not, so
    # the worker stops here with the message instead of retrying Celery's default amqp://.
    celery_app = getattr(sender, "app", None) or app
    try:
        require_broker(celery_app, celery_app.conf.get("progress_settings"))
    except ConfigError as exc:
        raise SystemExit(f"progress-bridge: {exc}") from None
