"""progress-bridge: live, replayable progress of Celery jobs.

Task authors subclass :class:`ProgressTask` (or call :func:`record_event`); the web side mounts
:func:`create_router`. Events are the pydantic models of :mod:`progress_bridge.events`; they land
in Redis Streams through :class:`EventStore`. The layout (``docs/architecture.md``)::

    events/   what happens to a job, as data (pure)
    store/    the only code that talks to Redis
    capture/  Celery side: ProgressTask, the reporter, lifecycle signals, the producer
    bridge/   WebSocket fan-out: an I/O-free protocol core (bridge/core) and its asyncio layer
    cli/      the ``progress-bridge`` command

Names that need an optional dependency (Celery for capture, Redis for the stores, FastAPI for the
bridge) are imported on first use, so a process pays only for what it touches.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import Settings
from .events import JobSnapshot, ProgressEvent, Replay
from .exceptions import (
    AuthError,
    ConfigError,
    DuplicateTerminal,
    FrameError,
    InvalidEvent,
    ProgressBridgeError,
    ProtocolError,
    StreamUnavailable,
)

__all__ = [
    "AsyncEventStore",
    "AuthError",
    "ConfigError",
    "DuplicateTerminal",
    "EventStore",
    "FrameError",
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
    "create_app",
    "create_router",
    "record_event",
]

#: Lazily imported names → the module that defines them.
_LAZY = {
    "AsyncEventStore": ".store.aio",
    "EventStore": ".store.sync",
    "ProgressReporter": ".capture.reporter",
    "ProgressSink": ".capture.sink",
    "ProgressTask": ".capture.task",
    "record_event": ".capture.producer",
    "create_app": ".bridge.routes",
    "create_router": ".bridge.routes",
}

if TYPE_CHECKING:
    from .bridge.routes import create_app, create_router
    from .capture.producer import record_event
    from .capture.reporter import ProgressReporter
    from .capture.sink import ProgressSink
    from .capture.task import ProgressTask
    from .store.aio import AsyncEventStore
    from .store.sync import EventStore


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
