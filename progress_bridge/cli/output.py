"""Output helpers shared by the subcommands."""

from __future__ import annotations

import sys

__all__ = ["err", "out"]


def out(line: str) -> None:
    """A line of the command's result on stdout (what scripts read)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def err(line: str) -> None:
    """A line for the person on stderr (progress, hints, errors)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
