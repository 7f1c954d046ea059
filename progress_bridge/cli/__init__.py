"""The ``progress-bridge`` command: ``dev`` runs the stack, ``tail JOB_ID`` follows a job,
``serve`` runs the bridge, ``token`` mints a development token, ``reap`` ends the jobs of dead
workers.

One module per subcommand, registered in :data:`SUBCOMMANDS` (name → add-arguments, run, help);
adding a command is one table row.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from ..exceptions import ConfigError, StoreRejected, StreamUnavailable
from .dev import add_dev_args, cmd_dev
from .output import err
from .reap import add_reap_args, cmd_reap
from .serve import add_serve_args, cmd_serve
from .tail import add_tail_args, cmd_tail
from .token import add_token_args, cmd_token

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: name → (add arguments, run, one-line help).
SUBCOMMANDS: dict[
    str,
    tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str],
] = {
    "dev": (
        add_dev_args,
        cmd_dev,
        "run the local stack (Redis, a Celery worker, the web app, Flower) until Ctrl-C",
    ),
    "tail": (add_tail_args, cmd_tail, "print a job's events as JSON lines and follow it"),
    "serve": (add_serve_args, cmd_serve, "serve the WebSocket bridge (and the app around it)"),
    "token": (add_token_args, cmd_token, "print a development token (needs the secret)"),
    "reap": (
        add_reap_args,
        cmd_reap,
        "end (or redeliver) running jobs whose worker is gone; workers already run one",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="progress-bridge", description="Live, replayable progress of Celery jobs."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_args, run, help_text) in SUBCOMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=run.__doc__ or help_text)
        add_args(child)
        child.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        err(f"progress-bridge: {exc}")
        return 2
    except (StreamUnavailable, StoreRejected) as exc:
        err(f"progress-bridge: cannot reach Redis: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return code
