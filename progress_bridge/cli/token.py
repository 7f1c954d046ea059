"""``progress-bridge token``: mint a development token."""

from __future__ import annotations

import argparse

from ..config import Settings
from .output import err, out

__all__ = ["add_token_args", "cmd_token"]


def add_token_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="the token's subject (user name)")
    parser.add_argument("--admin", action="store_true", help="may watch every job")
    parser.add_argument(
        "--job", action="append", default=[], dest="jobs", help="grant one more job (repeatable)"
    )
    parser.add_argument("--ttl", type=int, default=None, help="seconds (default: token_ttl_s)")


def cmd_token(args: argparse.Namespace) -> int:
    """Print a token signed with PROGRESS_TOKEN_SECRET (the servers' secret)."""
    from ..bridge.tokens import TokenAuthority

    settings = Settings.from_env()
    if settings.token_secret is None:
        err(
            "progress-bridge: PROGRESS_TOKEN_SECRET is not set; a server without it draws a "
            "random secret, so no token minted here would verify. Set it for both."
        )
        return 2
    out(TokenAuthority(settings).mint(args.user, admin=args.admin, jobs=args.jobs, ttl_s=args.ttl))
    return 0
