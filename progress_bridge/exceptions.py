"""Errors raised by progress-bridge.

::

    ProgressBridgeError
    ├── ConfigError          a setting is missing or invalid (raised at start-up)
    ├── AuthError            a token is missing, malformed, badly signed or expired
    ├── ProtocolError        a client frame is malformed or arrives in an illegal state
    │   └── FrameError       ... refused with an ``error`` frame (its ``code`` and ``ref``)
    ├── InvalidEvent         an event payload is off-schema, or a ProgressTask call is invalid
    ├── DuplicateTerminal    a second completed/failed/cancelled for a job was refused
    ├── StreamUnavailable    Redis is unreachable (the call may succeed later)
    └── StoreRejected        Redis refused a call with an error reply (retrying will not help)

Exceptions carry the fields a caller needs to act (``job_id``, ``last_id``); their ``str()`` is a
sentence a person can act on.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "DuplicateTerminal",
    "FrameError",
    "InvalidEvent",
    "ProgressBridgeError",
    "ProtocolError",
    "StoreRejected",
    "StreamUnavailable",
]


class ProgressBridgeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(ProgressBridgeError):
    """A setting is missing or invalid; raised when the process starts, never later."""


class ProtocolError(ProgressBridgeError):
    """A client sent a frame the protocol does not accept.

    Attributes:
        code: the machine-readable error code sent back to the client (see docs/protocol.md).
    """

    def __init__(self, message: str, *, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class AuthError(ProgressBridgeError):
    """A token is missing, malformed, badly signed or expired (close 4001 / HTTP 401)."""


class FrameError(ProtocolError):
    """A client frame was refused; ``code`` (an error code of ``docs/protocol.md``) and ``ref``
    go back in an ``error`` frame — unless ``reply`` is False (a bad ``ack``: acks get no
    answer)."""

    def __init__(
        self, message: str, *, code: str, ref: str | int | None = None, reply: bool = True
    ) -> None:
        super().__init__(message, code=code)
        self.ref = ref
        self.reply = reply


class InvalidEvent(ProgressBridgeError, ValueError):
    """An event or a progress call does not fit the schema; nothing was written."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(f"{message} (job {job_id})" if job_id else message)
        self.job_id = job_id


class DuplicateTerminal(ProgressBridgeError):
    """The job already has its terminal event; the new event was not appended.

    Refused after a job's end: a second terminal event, and any other event of its processing
    (only export events go on). ``refused`` is the refused event's type.
    """

    def __init__(self, job_id: str, existing: str, refused: str) -> None:
        super().__init__(f"job {job_id} already ended with {existing}; {refused} was not appended")
        self.job_id = job_id
        self.existing = existing
        self.refused = refused


class StreamUnavailable(ProgressBridgeError):
    """Redis could not be reached (or answered an error) for a read that needs it."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class StoreRejected(ProgressBridgeError):
    """Redis answered a store call with an error reply (a script error, out of memory, a key of
    the wrong type): the same call would fail again."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
