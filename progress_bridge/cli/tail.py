"""``progress-bridge tail JOB_ID``: follow a job from a terminal, from Redis or through a bridge.

Two sources: the store (``REDIS_URL``; the whole kept history, then live) or a bridge
(``--url ws://…/ws``; the job's snapshot, then live, with the bridge's authorization — for a
user outside the Redis network). Two views: a live progress line with lifecycle lines above it
when stdout is a terminal, JSON lines with ``--json`` or when piped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator

from ..config import Settings
from ..events.policy import TERMINAL_TYPES
from ..events.records import StoredEntry
from ..events.snapshot import JobSnapshot
from ..exceptions import AuthError, ConfigError
from ..store.sync import EventStore
from .devstack import cli_settings
from .output import err
from .tailview import JsonLines, LiveView, TailView

__all__ = [
    "EXIT_COMPLETED",
    "EXIT_FAILED",
    "EXIT_RUNNING",
    "EXIT_UNKNOWN",
    "TAIL_EPILOG",
    "add_tail_args",
    "cmd_tail",
]

#: Exit codes of ``tail``.
EXIT_COMPLETED, EXIT_FAILED, EXIT_UNKNOWN, EXIT_RUNNING = 0, 1, 2, 3
#: How long one read blocks (ms); below redis-py's default 5 s socket timeout on purpose.
TAIL_BLOCK_MS = 1_000

TAIL_EPILOG = """exit status:
  0  the job completed
  1  the job failed or was cancelled
  2  unknown job (never seen, expired, or not yours), Redis or the bridge unreachable,
     or a bad argument
  3  with --no-follow: the job has not ended yet

With no --url, reads Redis (REDIS_URL, or the stack `progress-bridge dev` is running).
With --url, follows the job through a bridge; the token comes from --token, or is minted for
--user with the token secret (PROGRESS_TOKEN_SECRET, or the running dev stack's)."""


def add_tail_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", help="the job's id (its Celery task id)")
    parser.add_argument(
        "--no-follow", action="store_true", help="print the history and exit without waiting"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line (the default when stdout is not a terminal)",
    )
    parser.add_argument(
        "--url", default=None, help="follow through a bridge: its WebSocket URL (ws://…/ws)"
    )
    parser.add_argument("--token", default=None, help="with --url: the token to present")
    parser.add_argument(
        "--user", default=None, help="with --url and no --token: mint a token for this user"
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = TAIL_EPILOG


def _exit_code_of(event_type: str) -> int:
    return EXIT_COMPLETED if event_type == "processing_completed" else EXIT_FAILED


def cmd_tail(args: argparse.Namespace) -> int:
    """Print a job's events, then follow it until it ends (exit status below)."""
    settings = cli_settings()
    view: TailView = JsonLines() if args.json or not sys.stdout.isatty() else LiveView(sys.stdout)
    if args.url:
        return asyncio.run(_tail_bridge(args, settings, view))
    if not settings.redis_url:
        err(
            "tail: REDIS_URL is not set and no `progress-bridge dev` stack is running here; "
            "point REDIS_URL at the server the jobs are recorded in, or use --url ws://…/ws"
        )
        return EXIT_UNKNOWN
    store = EventStore.from_url(settings.redis_url, settings, socket_timeout=None)
    try:
        return _tail_store(store, args.job_id, follow=not args.no_follow, view=view)
    finally:
        store.close()
        view.close()


def _tail_store(store: EventStore, job_id: str, *, follow: bool, view: TailView) -> int:
    replay = store.replay(job_id)
    if replay.reason == "unknown_job":
        err(f"tail: unknown job {job_id!r} (no events recorded, or they expired)")
        return EXIT_UNKNOWN
    if not replay.recovered:
        err(f"tail: the start of job {job_id}'s history was trimmed; printing what is kept")
        if replay.snapshot is not None:
            view.snapshot(replay.snapshot)
    epoch = replay.epoch or ""
    for entry in _follow(store, job_id, epoch, replay.entries, follow):
        view.stored(entry)
        event_type = entry.event().type if view.parses else _type_of(entry)
        if event_type in TERMINAL_TYPES:
            return _exit_code_of(event_type)
    if not follow:
        return EXIT_RUNNING
    err(f"tail: job {job_id}'s history expired or was deleted")
    return EXIT_UNKNOWN


def _follow(
    store: EventStore, job_id: str, epoch: str, first: list[StoredEntry], follow: bool
) -> Iterator[StoredEntry]:
    """The kept history, then (with ``follow``) new entries until the history vanishes."""
    yield from first
    last_id = first[-1].id if first else "0-0"
    while follow:
        entries = store.follow(job_id, epoch, last_id, block_ms=TAIL_BLOCK_MS)
        if not entries and not store.exists(job_id):
            return
        for entry in entries:
            last_id = entry.id
            yield entry


def _type_of(entry: StoredEntry) -> str:
    # The type tag without parsing the whole event (JSON lines print the payload as stored).
    head = entry.payload.partition('"type":"')[2]
    return head.partition('"')[0]


async def _tail_bridge(args: argparse.Namespace, settings: Settings, view: TailView) -> int:
    from ..client import JobNotWatchable, watch

    token = args.token or _minted(settings, args.user)
    try:
        async for update in watch(args.url, args.job_id, token=token, max_attempts=5):
            if isinstance(update, JobSnapshot):
                view.snapshot(update)
                if update.finished:
                    return _exit_code_of(f"processing_{update.status.value}")
                if args.no_follow:
                    return EXIT_RUNNING
                continue
            view.event(update)
            if update.type in TERMINAL_TYPES:
                return _exit_code_of(update.type)
    except JobNotWatchable as exc:
        err(f"tail: {exc}")
        return EXIT_UNKNOWN
    except AuthError as exc:
        err(f"tail: {exc} (pass --token, or --user with the token secret set)")
        return EXIT_UNKNOWN
    except OSError as exc:
        err(f"tail: cannot reach the bridge at {args.url}: {exc}")
        return EXIT_UNKNOWN
    finally:
        view.close()
    return EXIT_UNKNOWN


def _minted(settings: Settings, user: str | None) -> str | None:
    if user is None:
        return None
    if settings.token_secret is None:
        raise ConfigError(
            "--user needs the token secret to mint a token: set PROGRESS_TOKEN_SECRET (or run "
            "this next to a `progress-bridge dev` stack), or pass --token"
        )
    from ..bridge.tokens import TokenAuthority

    return TokenAuthority(settings).mint(user)
