"""``progress-bridge dev``: the whole stack on one machine until Ctrl-C.

Runs Redis (an embedded valkey-server unless ``REDIS_URL`` is set), a Celery worker of the
project's Celery app, the project's web app (or the bare bridge) and Flower, under a
:class:`~progress_bridge.cli.supervisor.Supervisor` that stops them all on Ctrl-C or SIGTERM, or
when one of them exits. Which Celery app, web app and demo task: ``--celery-app``, ``--app``,
``--demo-task``, or the settings ``celery_app``, ``asgi_app``, ``demo_task`` (environment
``PROGRESS_*`` or ``[tool.progress-bridge]`` in ``pyproject.toml``). The library knows no
application by name.

Flower's HTTP API answers 401 unless it is opened explicitly: on a loopback address ``dev`` runs
Flower with ``FLOWER_UNAUTHENTICATED_API=true`` (only this machine can reach it, like the rest of
the stack); on any other address it draws a password for ``--basic-auth`` and prints it (the
stack file has it too). Either way ``curl http://127.0.0.1:5555/api/tasks`` works as printed.

``--demo`` submits the demo job and prints, on stdout, its id and then a link to the page that
signs the browser in as the demo job's owner and opens that job: the token rides in the URL
*fragment* (never sent to a server, nor written to its access log), is valid for
:data:`DEMO_LINK_TTL_S` only (a link copied from a terminal or a log is useless an hour later;
the page's own session then asks for fresh tokens), and the page removes it from the address bar
as soon as it has read it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import ipaddress
import os
import secrets
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from ..config import Settings
from ..exceptions import ConfigError
from ..store.embedded import EmbeddedValkey
from .devstack import record_stack
from .output import err, out
from .supervisor import Supervisor

__all__ = ["DEV_PROCESSES", "add_dev_args", "cmd_dev"]

#: Seconds ``dev`` waits for the web app to answer before it prints the page's address.
WEB_START_TIMEOUT_S = 30.0
#: Lifetime of the token in the demo link ``dev --demo`` prints (seconds).
DEMO_LINK_TTL_S = 15 * 60
#: The user name of the Flower password ``dev`` draws when Flower listens beyond loopback.
FLOWER_USER = "flower"


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
    parser.add_argument(
        "--demo",
        action="store_true",
        help="submit a demo job; print its id, then a link that opens it signed in as its owner",
    )
    parser.add_argument(
        "--demo-task",
        default=None,
        help="what --demo submits: a ProgressTask 'module:task', or a function 'module:function' "
        "(settings, owner=, speed=) returning the job id (default: the demo_task setting)",
    )
    parser.add_argument(
        "--demo-speed",
        type=float,
        default=1.0,
        help="demo pace: 1 is real time (about a minute for the PDF demo), 2 twice as fast "
        "(half the time), 0.5 twice as slow",
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
        flower_env, flower_login = flower_access(args.host, child_env)
        stack.callback(supervisor.stop_all)
        for name, argv_of in DEV_PROCESSES:
            argv = argv_of(args)
            if argv:
                env = {**child_env, **flower_env} if name == "flower" else child_env
                supervisor.start(name, argv, cwd=os.getcwd(), env=env)
        web = f"http://{args.host}:{args.port}/"
        flower = f"http://{args.host}:{args.flower_port}/" if args.flower_port else None
        stack_file = record_stack(
            settings,
            redis_url=url,
            token_secret=secret,
            page_url=web,
            flower_url=flower,
            flower_login=flower_login,
        )
        stack.callback(stack_file.unlink, missing_ok=True)
        if _answers_soon(web + "healthz", supervisor, WEB_START_TIMEOUT_S):
            err(f"[dev] page, REST API and /ws: {web}")
        elif supervisor.running():
            err(f"[dev] the web app does not answer at {web} yet; its log is above")
        if flower:
            # Flower learns about tasks from events only: let it listen before the demo starts.
            _answers_soon(flower + "healthcheck", supervisor, WEB_START_TIMEOUT_S)
            login = f" (user {FLOWER_USER}, password {flower_login})" if flower_login else ""
            err(f"[dev] Celery Flower: {flower}{login}; its API: {flower}api/tasks")
        err(
            "[dev] in another terminal here, `progress-bridge tail JOB_ID` and "
            "`progress-bridge token --user NAME` find this stack"
        )
        if demo_task:
            demo_settings = settings.model_copy(update={"redis_url": url})
            job_id = _submit_demo(demo_settings, demo_task, args)
            link = demo_link(web, job_id, args.demo_owner, secret, settings)
            out(job_id)
            out(link)
            minutes = DEMO_LINK_TTL_S // 60
            err(f"[dev] demo job {job_id}, owned by {args.demo_owner}")
            err(f"[dev]   in the browser (signs you in as {args.demo_owner}; valid {minutes} min):")
            err(f"[dev]     {link}")
            if flower:
                err(f"[dev]   in Flower: {flower}task/{job_id}")
            err(f"[dev]   in a terminal: progress-bridge tail {job_id}")
        code = supervisor.wait()
        err("[dev] stopping")
    return code


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def flower_access(host: str, env: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The environment that makes Flower's API usable, and the password drawn (if any).

    Loopback: ``FLOWER_UNAUTHENTICATED_API=true`` (only this machine reaches it). Elsewhere: a
    random password for user :data:`FLOWER_USER` (``FLOWER_BASIC_AUTH``, so it never shows in
    ``ps``). Flower settings already in the environment win.
    """
    if any(name in env for name in ("FLOWER_BASIC_AUTH", "FLOWER_AUTH")):
        return {}, None
    if _is_loopback(host):
        return {"FLOWER_UNAUTHENTICATED_API": env.get("FLOWER_UNAUTHENTICATED_API", "true")}, None
    password = secrets.token_urlsafe(12)
    return {"FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{password}"}, password


def demo_link(page_url: str, job_id: str, owner: str, secret: str, settings: Settings) -> str:
    """The page's address with ``#job=…&token=…``: opens ``job_id`` signed in as ``owner``.

    The token is short-lived (:data:`DEMO_LINK_TTL_S`) and in the fragment, which browsers never
    send to the server (see the module docstring).
    """
    from ..bridge.tokens import TokenAuthority

    authority = TokenAuthority(settings.model_copy(update={"token_secret": SecretStr(secret)}))
    token = authority.mint(owner, ttl_s=DEMO_LINK_TTL_S)
    return f"{page_url}#job={quote(job_id, safe='')}&token={token}"


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


def _load_demo(spec: str) -> Any:
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        raise ConfigError(f"demo task {spec!r} must look like 'package.module:task'")
    try:
        demo = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the demo task {spec!r}: {exc}") from None
    if not callable(demo):
        raise ConfigError(
            f"the demo {spec!r} is neither a ProgressTask nor a function returning a job id"
        )
    return demo


def _submit_demo(settings: Settings, spec: str, args: argparse.Namespace) -> str:
    """Submit the demo job with ``settings`` (its Redis URL set); return its id.

    A ProgressTask is submitted with ``speed`` as its keyword argument; any other callable is
    called as ``demo(settings, owner=..., speed=...)`` and returns the job id (for a demo that
    has more to do, such as storing the document a PDF job reads).
    """
    demo = _load_demo(spec)
    if not callable(getattr(demo, "submit", None)):
        return str(demo(settings, owner=args.demo_owner, speed=args.demo_speed))
    url = settings.redis_url
    # This process loaded the app's configuration before the server existed: point it there.
    demo.app.conf.update(
        broker_url=settings.celery_broker_url or url,
        result_backend=settings.celery_result_backend or url,
        progress_settings=settings,
    )
    result = demo.submit(owner=args.demo_owner, kwargs={"speed": args.demo_speed})
    return str(result.id)
