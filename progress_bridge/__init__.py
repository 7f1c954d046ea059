"""progress-bridge: live, replayable progress of Celery jobs.

Task authors use :class:`ProgressTask`; the web side mounts :func:`create_router`. Events are
the pydantic models of :mod:`progress_bridge.events`; everything lands in Redis Streams through
:class:`EventStore`.
"""

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
    "ProtocolError",
    "Replay",
    "Settings",
    "StreamUnavailable",
]
