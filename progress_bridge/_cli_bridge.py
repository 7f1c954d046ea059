"""The bridge's ``progress-bridge`` subcommands: ``serve`` and ``token`` (rows in ``cli.py``)."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import Settings

__all__ = ["add_serve_args", "add_token_args", "cmd_serve", "cmd_token"]


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument("--bare", action="store_true", help="only the bridge, not the demo app")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the WebSocket bridge (and the demo app) until SIGINT/SIGTERM."""
    from . import server

    if args.log_json:
        handler = logging.StreamHandler()
        handler.setFormatter(server.JsonLogFormatter())
        logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    else:
        logging.basicConfig(level=args.log_level.upper())
    settings = Settings.from_env()
    app = None
    if args.bare:
        from .asgi import create_app

        app = create_app(settings)
    # With --log-json, uvicorn's own loggers go through the root JSON handler too.
    extra = {"log_config": None} if args.log_json else {}
    server.run(settings, args.host, args.port, app=app, log_level=args.log_level, **extra)
    return 0


def add_token_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="the token's subject")
    parser.add_argument("--admin", action="store_true", help="may watch every job")
    parser.add_argument(
        "--job", action="append", default=[], dest="jobs", help="grant one more job (repeatable)"
    )
    parser.add_argument("--ttl", type=int, default=None, help="seconds (default: token_ttl_s)")


def cmd_token(args: argparse.Namespace) -> int:
    """Print a development token signed with PROGRESS_TOKEN_SECRET."""
    from .auth import TokenAuthority

    settings = Settings.from_env()
    if settings.token_secret is None:
        sys.stderr.write(
            "progress-bridge: PROGRESS_TOKEN_SECRET is not set; a server without it draws a "
            "random secret, so no token minted here would verify. Set it for both.\n"
        )
        return 2
    token = TokenAuthority(settings).mint(
        args.user, admin=args.admin, jobs=args.jobs, ttl_s=args.ttl
    )
    sys.stdout.write(token + "\n")
    return 0
