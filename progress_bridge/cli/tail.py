"""``progress-bridge tail JOB_ID``: print a job's events from the start, then follow it."""

from __future__ import annotations

import argparse
import json

from ..config import Settings
from ..events.policy import TERMINAL_TYPES
from ..store.sync import EventStore
from .output import err, out

__all__ = [
    "EXIT_COMPLETED",
    "EXIT_FAILED",
    "EXIT_RUNNING",
    "EXIT_UNKNOWN",
    "add_tail_args",
    "cmd_tail",
]

#: Exit codes of ``tail`` (3: ``--no-follow`` on a job that has not ended).
EXIT_COMPLETED, EXIT_FAILED, EXIT_UNKNOWN, EXIT_RUNNING = 0, 1, 2, 3
#: How long one read blocks (ms); below redis-py's default 5 s socket timeout on purpose.
TAIL_BLOCK_MS = 1_000


def add_tail_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", help="the job's id (its Celery task id)")
    parser.add_argument(
        "--no-follow", action="store_true", help="print the history and exit without waiting"
    )


def _exit_code_of(event_type: str) -> int:
    return EXIT_COMPLETED if event_type == "processing_completed" else EXIT_FAILED


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the job's events as JSON lines from the start, then follow until it ends.

    Exit status: 0 completed, 1 failed or cancelled, 2 unknown job (or the history vanished),
    3 with ``--no-follow`` when the job has not ended yet.
    """
    settings = Settings.from_env()
    if not settings.redis_url:
        err("tail: REDIS_URL is not set; point it at the server the jobs are recorded in")
        return EXIT_UNKNOWN
    store = EventStore.from_url(settings.redis_url, settings, socket_timeout=None)
    try:
        return _tail(store, args.job_id, follow=not args.no_follow)
    finally:
        store.close()


def _tail(store: EventStore, job_id: str, *, follow: bool) -> int:
    replay = store.replay(job_id)
    if replay.reason == "unknown_job":
        err(f"tail: unknown job {job_id!r} (no events recorded, or they expired)")
        return EXIT_UNKNOWN
    if not replay.recovered:
        err(f"tail: the start of job {job_id}'s history was trimmed; printing what is kept")
    last_id = "0-0"
    entries = replay.entries
    epoch = replay.epoch or ""
    while True:
        for entry in entries:
            out(entry.wire_json())
            last_id = entry.id
            event_type = _type_of(entry.payload)
            if event_type in TERMINAL_TYPES:
                return _exit_code_of(event_type)
        if not follow:
            return EXIT_RUNNING
        entries = store.follow(job_id, epoch, last_id, block_ms=TAIL_BLOCK_MS)
        if not entries and not store.exists(job_id):
            err(f"tail: job {job_id}'s history expired or was deleted")
            return EXIT_UNKNOWN


def _type_of(payload: str) -> str:
    value = json.loads(payload).get("type", "")
    return str(value)
