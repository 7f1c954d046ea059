"""``progress-bridge serve``: the bridge (and the app around it) under uvicorn."""

from __future__ import annotations

import argparse
import logging

from ..config import Settings
from ..exceptions import ConfigError

__all__ = ["add_serve_args", "cmd_serve"]


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument(
        "--app",
        default=None,
        help="the app factory, 'module:function' taking the Settings (default: the asgi_app "
        "setting; else the bare bridge)",
    )
    parser.add_argument(
        "--bare", action="store_true", help="only the bridge, whatever the asgi_app setting"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="bridge processes sharing the port (one per core; default 1)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the WebSocket bridge (and the app around it) until SIGINT/SIGTERM."""
    from ..bridge import server

    if args.log_json:
        handler = logging.StreamHandler()
        handler.setFormatter(server.JsonLogFormatter())
        logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    else:
        logging.basicConfig(level=args.log_level.upper())
    settings = Settings.from_env()
    spec = None if args.bare else args.app or settings.asgi_app
    # With --log-json, uvicorn's own loggers go through the root JSON handler too.
    extra = {"log_config": None} if args.log_json else {}
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1:
        from ..bridge.workers import run_workers

        run_workers(
            settings, args.host, args.port, args.workers, spec, log_level=args.log_level, **extra
        )
        return 0
    app = server.load_app_factory(spec)(settings)
    server.run(settings, args.host, args.port, app=app, log_level=args.log_level, **extra)
    return 0
