"""progress-bridge: live, replayable progress of Celery jobs.

Task authors use :class:`ProgressTask`; the web side mounts :func:`create_router`. Events are
the pydantic models of :mod:`progress_bridge.events`; everything lands in Redis Streams through
:class:`EventStore`.
"""

from typing import TYPE_CHECKING, Any

from .config import Settings
from .events import ProgressEvent
from .exceptions import (
    ConfigError,
    DuplicateTerminal,
    InvalidEvent,
    ProgressBridgeError,
    ProtocolError,
    StreamUnavailable,
)
from .sink import ProgressSink
from .snapshot import JobSnapshot
from .streams import AsyncEventStore, EventStore, Replay

__all__ = [
    "AsyncEventStore",
    "ConfigError",
    "DuplicateTerminal",
    "EventStore",
    "InvalidEvent",
    "JobSnapshot",
    "ProgressBridgeError",
    "ProgressEvent",
    "ProgressReporter",
    "ProgressSink",
    "ProgressTask",
    "ProtocolError",
    "Replay",
    "Settings",
    "StreamUnavailable",
    "create_router",
]

if TYPE_CHECKING:
    from .asgi import create_router
    from .task import ProgressReporter, ProgressTask


def __getattr__(name: str) -> Any:
    # The bridge needs FastAPI (the ``web`` extra); Celery workers import this package too and
    # should not pay for FastAPI, so ``create_router`` is imported on first use.
    if name == "create_router":
        from .asgi import create_router

        return create_router
    # ProgressTask needs Celery; processes that only read streams (the bridge) should not pay
    # for importing it, so it is imported on first use.
    if name in ("ProgressTask", "ProgressReporter"):
        from . import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
