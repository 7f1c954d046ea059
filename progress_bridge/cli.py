"""The ``progress-bridge`` command: ``dev`` runs the stack, ``tail JOB_ID`` follows a job.

One function per subcommand, registered in :data:`SUBCOMMANDS` (name → add-arguments, run,
help); adding a command is one table row. ``dev`` runs its children under a small
:class:`Supervisor` that stops all of them on Ctrl-C or SIGTERM, or when one of them exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

import redis

from ._cli_bridge import add_serve_args, add_token_args, cmd_serve, cmd_token
from .config import Settings
from .embedded import EmbeddedValkey
from .events import TERMINAL_TYPES
from .exceptions import ConfigError
from .streams import EventStore, with_position

__all__ = ["DEV_PROCESSES", "SUBCOMMANDS", "Supervisor", "main"]

#: Exit codes of ``tail`` (3: ``--no-follow`` on a job that has not ended).
EXIT_COMPLETED, EXIT_FAILED, EXIT_UNKNOWN, EXIT_RUNNING = 0, 1, 2, 3
#: How long one XREAD blocks (ms); below redis-py's default 5 s socket timeout on purpose.
TAIL_BLOCK_MS = 1_000
#: Seconds a child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0
#: Seconds ``dev`` waits for the web app to answer before it prints the page's address.
WEB_START_TIMEOUT_S = 30.0


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# -- a small process supervisor ------------------------------------------------------------------


@dataclass
class Supervisor:
    """Start child processes; stop them all (last started first) when any exits or on a signal."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, name: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        # Own session: a terminal's Ctrl-C reaches us only, and we stop children in order.
        # Their output goes to our stderr: our stdout carries only what we print (a demo
        # job's id, for scripts), not a worker's banner.
        popen.setdefault("stdout", sys.stderr)
        proc = subprocess.Popen(list(argv), start_new_session=True, **popen)
        self.children.append((name, proc))
        _err(f"[dev] started {name} (pid {proc.pid})")
        return proc

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        self._stop.set()

    def wait(self) -> int:
        """Block until a signal or a child exits; return 0 for a signal, 1 if a child died."""
        while not self._stop.wait(0.2):
            for name, proc in self.children:
                if proc.poll() is not None:
                    _err(f"[dev] {name} exited with status {proc.returncode}; stopping")
                    return 1
        return 0

    def running(self) -> bool:
        """No stop asked for, and every child still running."""
        return not self._stop.is_set() and all(p.poll() is None for _, p in self.children)

    def stop_all(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    _err(f"[dev] {name} did not stop in {STOP_TIMEOUT_S:g} s; killing it")
                    proc.kill()
                    proc.wait()
        self.children.clear()


def _project_root() -> Path:
    """The directory holding ``celeryconfig.py`` and ``tasks/`` (the worker's working dir)."""
    import tasks

    return Path(tasks.__file__).resolve().parent.parent


# -- dev -------------------------------------------------------------------------------------------


def add_dev_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true", help="submit a demo job and print its id")
    parser.add_argument("--demo-speed", type=float, default=1.0, help="demo timing multiplier")
    parser.add_argument("--demo-owner", default="demo", help="owner recorded on the demo job")
    parser.add_argument("--pool", default="prefork", choices=("prefork", "threads", "solo"))
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--host", default="127.0.0.1", help="web app and Flower address")
    parser.add_argument("--port", type=int, default=8000, help="web app (page, API, /ws) port")
    parser.add_argument(
        "--flower-port", type=int, default=5555, help="Celery Flower port (0: no Flower)"
    )


def worker_argv(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-P",
        args.pool,
        "-c",
        str(args.concurrency),
        "-E",
        "--without-mingle",
        "--without-gossip",
        "-l",
        "info",
    ]


def web_argv(args: argparse.Namespace) -> list[str]:
    """The demo web app: the page, the REST API and the bridge (``/ws``)."""
    return [
        sys.executable,
        "-m",
        "progress_bridge.cli",
        "serve",
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]


def flower_argv(args: argparse.Namespace) -> list[str]:
    if not args.flower_port:
        return []
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "flower",
        f"--address={args.host}",
        f"--port={args.flower_port}",
    ]


#: The children ``dev`` runs, in start order (stopped in reverse): name → argv from the options
#: (an empty argv skips the child). Each child gets ``REDIS_URL`` in its environment.
DEV_PROCESSES: list[tuple[str, Callable[[argparse.Namespace], list[str]]]] = [
    ("worker", worker_argv),
    ("web", web_argv),
    ("flower", flower_argv),
]


def cmd_dev(args: argparse.Namespace) -> int:
    """Run Redis (embedded unless REDIS_URL is set) and a worker until Ctrl-C; stop all after."""
    settings = Settings.from_env()
    supervisor = Supervisor()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, supervisor.request_stop)
    with contextlib.ExitStack() as stack:
        url = settings.redis_url
        if not url:
            # Stopped after the children (the worker may be finishing a task), not by Ctrl-C.
            url = stack.enter_context(EmbeddedValkey(own_session=True)).url
            _err(f"[dev] embedded valkey-server at {url}")
        # Children inherit our environment plus the server we chose. Without a configured token
        # secret, one is drawn for this run and shared, so `progress-bridge token` output and
        # the page's sign-in work against every child.
        child_env = {**os.environ, "REDIS_URL": url}
        if settings.token_secret is None:
            child_env["PROGRESS_TOKEN_SECRET"] = secrets.token_urlsafe(32)
        stack.callback(supervisor.stop_all)
        for name, argv_of in DEV_PROCESSES:
            argv = argv_of(args)
            if argv:
                supervisor.start(name, argv, cwd=_project_root(), env=child_env)
        web = f"http://{args.host}:{args.port}/"
        if _answers_soon(web + "healthz", supervisor, WEB_START_TIMEOUT_S):
            _err(f"[dev] page, REST API and /ws: {web}")
        elif supervisor.running():
            _err(f"[dev] the web app does not answer at {web} yet; its log is above")
        if args.flower_port:
            _err(f"[dev] Celery Flower: http://{args.host}:{args.flower_port}/")
        if args.demo:
            job_id = _submit_demo(settings, url, args)
            _out(job_id)
            _err(f"[dev] demo job {job_id}; watch it with: progress-bridge tail {job_id}")
        code = supervisor.wait()
        _err("[dev] stopping")
    return code


def _answers_soon(url: str, supervisor: Supervisor, timeout_s: float) -> bool:
    """Poll ``url`` until it answers 200 (True), the time is up or a child stopped (False)."""
    deadline = time.monotonic() + timeout_s
    while supervisor.running() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _submit_demo(settings: Settings, url: str, args: argparse.Namespace) -> str:
    from tasks import app
    from tasks.demo import walk_document

    # This process imported celeryconfig before the server existed: point it at the server.
    app.conf.update(
        broker_url=settings.celery_broker_url or url,
        result_backend=settings.celery_result_backend or url,
        progress_settings=settings.model_copy(update={"redis_url": url}),
    )
    result = walk_document.submit(owner=args.demo_owner, kwargs={"speed": args.demo_speed})
    return str(result.id)


# -- tail ------------------------------------------------------------------------------------------


def add_tail_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id")
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
        _err("tail: REDIS_URL is not set; point it at the server the jobs are recorded in")
        return EXIT_UNKNOWN
    store = EventStore.from_url(settings.redis_url, settings, socket_timeout=None)
    try:
        return _tail(store, args.job_id, follow=not args.no_follow)
    finally:
        store.client.close()


def _tail(store: EventStore, job_id: str, *, follow: bool) -> int:
    replay = store.replay(job_id)
    if replay.reason == "unknown_job":
        _err(f"tail: unknown job {job_id!r} (no events recorded, or they expired)")
        return EXIT_UNKNOWN
    if not replay.recovered:
        _err(f"tail: the start of job {job_id}'s history was trimmed; printing what is kept")
    last_id = "0-0"
    for entry in replay.entries:
        _out(entry.wire_json())
        last_id = entry.id
        event_type = _type_of(entry.payload)
        if event_type in TERMINAL_TYPES:
            return _exit_code_of(event_type)
    if not follow:
        return EXIT_RUNNING
    key, epoch = store.keys.stream(job_id), replay.epoch or ""
    while True:
        rows = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            store.client.xread({key: last_id}, block=TAIL_BLOCK_MS, count=500),
        )
        if not rows:
            if not store.client.exists(key):
                _err(f"tail: job {job_id}'s history expired or was deleted")
                return EXIT_UNKNOWN
            continue
        for entry_id, fields in rows[0][1]:
            last_id = entry_id
            _out(with_position(fields["e"], entry_id, epoch))
            event_type = _type_of(fields["e"])
            if event_type in TERMINAL_TYPES:
                return _exit_code_of(event_type)


def _type_of(payload: str) -> str:
    value = json.loads(payload).get("type", "")
    return str(value)


# -- entry point -------------------------------------------------------------------------------

#: name → (add arguments, run, one-line help). Other subsystems add rows (``serve``, ``token``).
SUBCOMMANDS: dict[
    str,
    tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str],
] = {
    "dev": (add_dev_args, cmd_dev, "run the local stack (Redis, worker) until Ctrl-C"),
    "tail": (add_tail_args, cmd_tail, "print a job's events as JSON lines and follow it"),
    "serve": (add_serve_args, cmd_serve, "serve the WebSocket bridge and the web app"),
    "token": (add_token_args, cmd_token, "print a development token (needs the secret)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="progress-bridge", description="Live, replayable progress of Celery jobs."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_args, run, help_text) in SUBCOMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        add_args(child)
        child.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        _err(f"progress-bridge: {exc}")
        return 2
    except redis.ConnectionError as exc:
        _err(f"progress-bridge: cannot reach Redis: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
