"""``progress-bridge dev``: the whole stack on one machine until Ctrl-C.

Runs Redis (an embedded valkey-server unless ``REDIS_URL`` is set), a Celery worker of the
project's Celery app, the project's web app (or the bare bridge) and Flower, under a
:class:`~progress_bridge.cli.supervisor.Supervisor` that stops them all on Ctrl-C or SIGTERM, or
when one of them exits. Which Celery app, web app and demo task: ``--celery-app``, ``--app``,
``--demo-task``, or the settings ``celery_app``, ``asgi_app``, ``demo_task`` (environment
``PROGRESS_*`` or ``[tool.progress-bridge]`` in ``pyproject.toml``). The library knows no
application by name.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import secrets
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..exceptions import ConfigError
from ..store.embedded import EmbeddedValkey
from .devstack import record_stack
from .output import err, out
from .supervisor import Supervisor

__all__ = ["DEV_PROCESSES", "add_dev_args", "cmd_dev"]

#: Seconds ``dev`` waits for the web app to answer before it prints the page's address.
WEB_START_TIMEOUT_S = 30.0


def add_dev_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--celery-app",
        default=None,
        help="the Celery app, as for `celery -A` (default: the celery_app setting)",
    )
    parser.add_argument(
        "--app",
        default=None,
        help="the web app factory, 'module:function' taking the Settings "
        "(default: the asgi_app setting; else the bare bridge)",
    )
    parser.add_argument("--demo", action="store_true", help="submit a demo job and print its id")
    parser.add_argument(
        "--demo-task",
        default=None,
        help="the demo ProgressTask, 'module:task' (default: the demo_task setting)",
    )
    parser.add_argument(
        "--demo-speed",
        type=float,
        default=1.0,
        help="demo timing multiplier: above 1 is slower, below 1 faster",
    )
    parser.add_argument("--demo-owner", default="demo", help="owner recorded on the demo job")
    parser.add_argument(
        "--pool", default="prefork", choices=("prefork", "threads", "solo"), help="worker pool"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes or threads")
    parser.add_argument("--host", default="127.0.0.1", help="web app and Flower address")
    parser.add_argument("--port", type=int, default=8000, help="web app (page, API, /ws) port")
    parser.add_argument(
        "--flower-port", type=int, default=5555, help="Celery Flower port (0: no Flower)"
    )


def _celery_app(args: argparse.Namespace, settings: Settings) -> str:
    name = args.celery_app or settings.celery_app
    if not name:
        raise ConfigError(
            "dev needs the Celery app to run a worker for: pass --celery-app MODULE, or set "
            "PROGRESS_CELERY_APP (or celery_app in [tool.progress-bridge] of pyproject.toml)"
        )
    return name


def worker_argv(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        args.celery_app,
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
    """The web app (the page, the REST API and the bridge's ``/ws``), or the bare bridge."""
    argv = [
        sys.executable,
        "-m",
        "progress_bridge.cli",
        "serve",
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    if args.app:
        argv += ["--app", args.app]
    return argv


def flower_argv(args: argparse.Namespace) -> list[str]:
    if not args.flower_port:
        return []
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        args.celery_app,
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
    """Run Redis (embedded unless REDIS_URL is set), a worker, the web app and Flower until
    Ctrl-C; stop all of them after."""
    settings = Settings.from_env()
    args.celery_app = _celery_app(args, settings)
    args.app = args.app or settings.asgi_app
    demo_task = (args.demo_task or settings.demo_task) if args.demo else None
    if args.demo and not demo_task:
        raise ConfigError(
            "--demo needs a demo task: pass --demo-task MODULE:TASK, or set PROGRESS_DEMO_TASK "
            "(or demo_task in [tool.progress-bridge] of pyproject.toml)"
        )
    _check_ports(args)
    supervisor = Supervisor()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, supervisor.request_stop)
    with contextlib.ExitStack() as stack:
        url = settings.redis_url
        if not url:
            # Stopped after the children (the worker may be finishing a task), not by Ctrl-C.
            url = stack.enter_context(EmbeddedValkey(own_session=True)).url
            err(f"[dev] embedded valkey-server at {url}")
        # Children inherit our environment plus the server we chose. Without a configured token
        # secret, one is drawn for this run and shared, so the page's sign-in and
        # `progress-bridge token` (which finds it in the stack file) work against every child.
        secret = (
            settings.token_secret.get_secret_value()
            if settings.token_secret
            else secrets.token_urlsafe(32)
        )
        child_env = {**os.environ, "REDIS_URL": url, "PROGRESS_TOKEN_SECRET": secret}
        stack.callback(supervisor.stop_all)
        for name, argv_of in DEV_PROCESSES:
            argv = argv_of(args)
            if argv:
                supervisor.start(name, argv, cwd=os.getcwd(), env=child_env)
        web = f"http://{args.host}:{args.port}/"
        flower = f"http://{args.host}:{args.flower_port}/" if args.flower_port else None
        stack_file = record_stack(
            settings, redis_url=url, token_secret=secret, page_url=web, flower_url=flower
        )
        stack.callback(stack_file.unlink, missing_ok=True)
        if _answers_soon(web + "healthz", supervisor, WEB_START_TIMEOUT_S):
            err(f"[dev] page, REST API and /ws: {web}")
        elif supervisor.running():
            err(f"[dev] the web app does not answer at {web} yet; its log is above")
        if flower:
            err(f"[dev] Celery Flower: {flower}")
        err(
            "[dev] in another terminal here, `progress-bridge tail JOB_ID` and "
            "`progress-bridge token --user NAME` find this stack"
        )
        if demo_task:
            job_id = _submit_demo(settings, url, demo_task, args)
            out(job_id)
            err(f"[dev] demo job {job_id}; watch it with: progress-bridge tail {job_id}")
        code = supervisor.wait()
        err("[dev] stopping")
    return code


def _check_ports(args: argparse.Namespace) -> None:
    """Refuse to start anything when a port the stack needs is taken (another stack runs?).

    Raises:
        ConfigError: naming the port, what it was for, and the option that changes it.
    """
    wanted = [("--port", "the web app", args.port)]
    if args.flower_port:
        wanted.append(("--flower-port", "Flower", args.flower_port))
    for option, what, port in wanted:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((args.host, port))
            except OSError:
                raise ConfigError(
                    f"port {port} on {args.host} ({what}) is taken — is another stack running? "
                    f"Stop it, or choose another port with {option} (e.g. {option} {port + 1})."
                ) from None


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


def _load_task(spec: str) -> Any:
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        raise ConfigError(f"demo task {spec!r} must look like 'package.module:task'")
    try:
        task = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the demo task {spec!r}: {exc}") from None
    if not callable(getattr(task, "submit", None)):
        raise ConfigError(f"the demo task {spec!r} is not a ProgressTask (it has no submit())")
    return task


def _submit_demo(settings: Settings, url: str, spec: str, args: argparse.Namespace) -> str:
    task = _load_task(spec)
    # This process loaded the app's configuration before the server existed: point it there.
    task.app.conf.update(
        broker_url=settings.celery_broker_url or url,
        result_backend=settings.celery_result_backend or url,
        progress_settings=settings.model_copy(update={"redis_url": url}),
    )
    result = task.submit(owner=args.demo_owner, kwargs={"speed": args.demo_speed})
    return str(result.id)
