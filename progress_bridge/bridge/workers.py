"""``progress-bridge serve --workers N``: N bridge processes on one port.

Why: one bridge process writes every delivery from one core; a bridge per core multiplies the
sockets a host can serve (figures in ``docs/benchmarks.md``). uvicorn's own supervisor binds the
listening socket once and starts N worker processes that share it (the kernel spreads new
connections over them), restarts a worker that dies, and on SIGTERM/SIGINT stops them all —
each closes its clients with 1012, and they reconnect to any process and resume. Each worker
has its own feed reader and hub: nothing is shared but the socket and Redis.

Metrics: the workers share a Prometheus multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``), so ``/metrics`` from any worker reports the whole server —
counters summed, the connection gauges summed over live workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from uvicorn.supervisors import Multiprocess

from ..config import Settings
from . import gcpolicy
from .server import install_redaction, load_app_factory, uvicorn_config

__all__ = ["APP_ENV", "app_from_env", "run_workers"]

#: Where a worker finds the app factory to run (the ``asgi_app`` setting's variable).
APP_ENV = "PROGRESS_ASGI_APP"
#: The bare bridge's factory, for ``serve --bare --workers N``.
BARE_APP = "progress_bridge.bridge.routes:create_app"


def app_from_env() -> Any:
    """The app of one worker process (uvicorn calls it in each, by name)."""
    settings = Settings.from_env()
    app = load_app_factory(settings.asgi_app)(settings)
    gcpolicy.install(settings.bridge_gc_full_interval_s)
    return app


class _Supervisor(Multiprocess):
    """uvicorn's supervisor; a worker that died has its metric files marked dead, so the
    live gauges stop counting its connections."""

    def keep_subprocess_alive(self) -> None:
        dead = [p.pid for p in self.processes if not p.process.is_alive() and p.pid is not None]
        if dead and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            for pid in dead:
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        super().keep_subprocess_alive()


def run_workers(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    app_spec: str | None,
    **overrides: Any,
) -> None:
    """Serve with ``workers`` processes until SIGINT/SIGTERM (see the module docstring)."""
    os.environ[APP_ENV] = app_spec or BARE_APP
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="progress-bridge-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        config = uvicorn_config(
            settings,
            host,
            port,
            app="progress_bridge.bridge.workers:app_from_env",
            factory=True,
            workers=workers,
            **overrides,
        )
        install_redaction()
        sock = config.bind_socket()
        _Supervisor(config, sockets=[sock]).run()
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
