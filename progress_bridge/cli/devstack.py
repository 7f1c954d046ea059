"""Where a running ``progress-bridge dev`` stack tells other commands how to reach it.

``dev`` writes ``<data_dir>/dev-stack.json`` (Redis URL, token secret, page and Flower
addresses, its pid; readable by the owner only) and removes it when it stops, so ``tail`` and
``token`` in a second terminal find the stack with no setting to copy. Settings from the
environment always win; a file whose ``dev`` process is gone is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..config import Settings

__all__ = ["STACK_FILE", "cli_settings", "read_stack", "record_stack"]

STACK_FILE = "dev-stack.json"


def _path(settings: Settings) -> Path:
    return Path(settings.data_dir) / STACK_FILE


def record_stack(settings: Settings, **values: Any) -> Path:
    """Write the stack's addresses (and this process's pid) for other commands to find."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), **values}, f)
    os.replace(tmp, path)
    return path


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_stack(settings: Settings) -> dict[str, Any] | None:
    """The running dev stack's addresses, or None (no file, unreadable, or its dev is gone)."""
    try:
        data = json.loads(_path(settings).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not _alive(data.get("pid")):
        return None
    return data


def cli_settings() -> Settings:
    """The environment's settings, completed by a running dev stack's Redis URL and token
    secret where the environment gives none."""
    settings = Settings.from_env()
    if settings.redis_url is not None and settings.token_secret is not None:
        return settings
    stack = read_stack(settings)
    if stack is None:
        return settings
    update: dict[str, Any] = {}
    if settings.redis_url is None and isinstance(stack.get("redis_url"), str):
        update["redis_url"] = stack["redis_url"]
    if settings.token_secret is None and isinstance(stack.get("token_secret"), str):
        update["token_secret"] = stack["token_secret"]
    return Settings.from_env(**update) if update else settings
