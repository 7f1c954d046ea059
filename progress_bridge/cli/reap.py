"""``progress-bridge reap``: end (or redeliver) the running jobs whose worker process is gone.

Every worker's main process already runs a reaper (``PROGRESS_REAPER_INTERVAL_S``); this command
is for when none may be left — all workers dead, a deployment scaled to zero — or for workers
run with ``PROGRESS_REAPER_INTERVAL_S=0``. Run it beside the bridge (any number of copies: each
job is ended exactly once). See :mod:`progress_bridge.capture.reaper`.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from typing import Any

from ..capture.reaper import Reaper, reaper_for
from ..config import Settings
from ..exceptions import ConfigError
from ..store.sync import EventStore
from .output import err, out

__all__ = ["add_reap_args", "cmd_reap"]

#: Seconds between passes when the settings turn the workers' reapers off.
DEFAULT_INTERVAL_S = 10.0


def add_reap_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="one pass now, print what it did as JSON lines, exit"
    )
    parser.add_argument(
        "--celery-app",
        default=None,
        help="the Celery app, as for `celery -A`, to redeliver the messages of tasks that are "
        "redelivered on a lost worker and to store Celery's FAILURE (default: the celery_app "
        "setting)",
    )
    parser.add_argument(
        "--no-celery",
        action="store_true",
        help="without a Celery app: every lost job ends failed (lost), none is redelivered",
    )


def _celery_app(name: str) -> Any:
    from celery.app.utils import find_app

    try:
        return find_app(name)
    except Exception as exc:  # celery raises several kinds for a bad -A
        raise ConfigError(f"reap: cannot load the Celery app {name!r}: {exc}") from None


def cmd_reap(args: argparse.Namespace) -> int:
    """End (or redeliver) running jobs whose lease expired, every reaper interval, until Ctrl-C.

    Exit status: 0, or 2 when Redis or the Celery app cannot be reached.
    """
    settings = Settings.from_env()
    if not settings.redis_url:
        raise ConfigError("reap: REDIS_URL is not set; point it at the server the jobs are in")
    store = EventStore.for_producer(settings.redis_url, settings)
    name = None if args.no_celery else (args.celery_app or settings.celery_app)
    reaper = reaper_for(_celery_app(name), store, settings) if name else Reaper(store, settings)
    try:
        if args.once:
            for reaped in reaper.reap_once():
                out(json.dumps({"job_id": reaped.job_id, "action": reaped.action}))
            return 0
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
        interval = settings.reaper_interval_s or DEFAULT_INTERVAL_S
        err(f"reap: every {interval:g} s (leases of {settings.lease_s:g} s); Ctrl-C stops")
        reaper.run(threading.Event(), interval)
        return 0
    finally:
        store.close()
