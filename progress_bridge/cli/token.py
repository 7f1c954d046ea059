"""``progress-bridge token``: mint a development token."""

from __future__ import annotations

import argparse

from .devstack import cli_settings
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
    """Print a token signed with the servers' secret: PROGRESS_TOKEN_SECRET, or the secret of the
    `progress-bridge dev` stack running here. Exit status 2 when there is none."""
    from ..bridge.tokens import TokenAuthority

    settings = cli_settings()
    if settings.token_secret is None:
        err(
            "progress-bridge: no token secret: set PROGRESS_TOKEN_SECRET (the bridge's), or run "
            "this in the directory of a running `progress-bridge dev` stack. (A bridge without "
            "one draws a random secret, so no token minted elsewhere would verify.)"
        )
        return 2
    out(TokenAuthority(settings).mint(args.user, admin=args.admin, jobs=args.jobs, ttl_s=args.ttl))
    return 0
