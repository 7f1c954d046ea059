"""Follow one job through a bridge, from a program: ``async for update in watch(url, job_id)``.

The Python counterpart of the TypeScript client, with the same guarantees (``docs/protocol.md``):
it reconnects by itself with full-jitter backoff, resumes from the last position it yielded, so
the caller sees every event once and in order — or, when the bridge cannot honour the position
(history trimmed, the store lost the job, a new epoch), a :class:`JobSnapshot` to start again
from, then the events after it. The iteration ends after the job's terminal event (or a
snapshot that says the job has ended).

Why a client of its own and not the store: a program outside the Redis network (a CI job, a
laptop) reaches the bridge, not Redis; and the bridge's authorization applies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from ..bridge.core.codes import CloseCode, ErrorCode
from ..bridge.core.wire import JSON_SUBPROTOCOL, PROTOCOL_VERSION, TOKEN_SUBPROTOCOL_PREFIX
from ..events.ids import parse_stream_id
from ..events.policy import TERMINAL_TYPES
from ..events.schema import ProgressEvent, parse_event
from ..events.snapshot import JobSnapshot
from ..exceptions import AuthError, ProgressBridgeError

__all__ = ["JobNotWatchable", "TokenSource", "Update", "watch"]

log = logging.getLogger("progress_bridge.client")

#: A token, or a (possibly async) function called before every connection attempt.
TokenSource = str | Callable[[], str | Awaitable[str | None] | None] | None
#: What :func:`watch` yields: the job's state to start from, or one event.
Update = JobSnapshot | ProgressEvent

#: Errors that end the watch: retrying would get the same answer.
_FATAL_ERRORS = {
    ErrorCode.NOT_FOUND,
    ErrorCode.FORBIDDEN,
    ErrorCode.BAD_FRAME,
    ErrorCode.BAD_JSON,
    ErrorCode.INVALID_POSITION,
}


class JobNotWatchable(ProgressBridgeError):
    """The bridge refused to show the job (``not_found``, ``forbidden``...): ``code`` says why."""

    def __init__(self, job_id: str, code: str, message: str) -> None:
        super().__init__(f"job {job_id}: {code}: {message}")
        self.job_id = job_id
        self.code = code


@dataclass
class _Position:
    epoch: str | None = None
    last_id: str | None = None

    def advance(self, epoch: str, event_id: str) -> bool:
        """Record an event; False when it is not newer than the position (a duplicate)."""
        if (
            self.epoch == epoch
            and self.last_id is not None
            and parse_stream_id(event_id) <= parse_stream_id(self.last_id)
        ):
            return False
        self.epoch, self.last_id = epoch, event_id
        return True


class _Retry(Exception):
    """The connection ended in a way that calls for a reconnect (with backoff)."""


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """Full jitter: uniform in ``[0, min(maximum, minimum * 2**attempt)]``.

    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
    """
    return random.uniform(0.0, min(maximum, minimum * 2.0**attempt))


async def _token_of(source: TokenSource) -> str | None:
    if callable(source):
        value = source()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        return value
    return source


async def watch(
    url: str,
    job_id: str,
    *,
    token: TokenSource = None,
    since: tuple[str, str] | None = None,
    min_delay_s: float = 0.5,
    max_delay_s: float = 20.0,
    max_attempts: int | None = None,
    open_timeout_s: float = 10.0,
) -> AsyncIterator[Update]:
    """Yield the job's state and events until its terminal event, or a snapshot of the ended job.

    Args:
        url: the bridge's WebSocket URL, e.g. ``ws://127.0.0.1:8000/ws``.
        job_id: the job to follow.
        token: the JWT, or a function returning one (called before each connection, so an
            expired token is replaced).
        since: ``(epoch, last_id)`` already seen: only what follows is yielded. Without it, the
            first update is the job's snapshot.
        min_delay_s, max_delay_s: the reconnect backoff's base and cap.
        max_attempts: give up (re-raise the last error) after this many failed connection
            attempts in a row; None: never.

    Raises:
        JobNotWatchable: the bridge refused the job (``not_found``, ``forbidden``...).
        AuthError: the bridge refused the token and ``token`` cannot give another.
    """
    position = _Position(*(since or (None, None)))
    failures = 0
    while True:
        try:
            async for update in _one_connection(url, job_id, token, position, open_timeout_s):
                failures = 0
                yield update
                # The end: its terminal event, or a snapshot of a job that has ended (a job
                # followed from after its end, or caught up in a new epoch after it ended:
                # no terminal event follows those).
                if isinstance(update, JobSnapshot):
                    if update.finished:
                        return
                elif update.type in TERMINAL_TYPES:
                    return
            raise _Retry("the connection ended")
        except (_Retry, OSError, InvalidHandshake, TimeoutError) as exc:
            failures += 1
            if max_attempts is not None and failures >= max_attempts:
                raise
            delay = backoff_delay(failures - 1, min_delay_s, max_delay_s)
            log.info("watch %s: %s; reconnecting in %.2fs", job_id, exc, delay)
            await asyncio.sleep(delay)


async def _one_connection(
    url: str, job_id: str, token_source: TokenSource, position: _Position, open_timeout_s: float
) -> AsyncIterator[Update]:
    """One connection's updates; ends (raising :class:`_Retry`) when it drops."""
    token = await _token_of(token_source)
    protocols = [Subprotocol(JSON_SUBPROTOCOL)]
    if token:
        protocols.append(Subprotocol(TOKEN_SUBPROTOCOL_PREFIX + token))
    try:
        ws = await connect(url, subprotocols=protocols, open_timeout=open_timeout_s)
    except InvalidStatus as exc:
        if exc.response.status_code in (401, 403):
            status = exc.response.status_code
            raise AuthError(f"the bridge refused the connection ({status})") from None
        raise
    async with ws:
        await _subscribe(ws, job_id, position)
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("op") == "ping":
                    await ws.send(_PONG)  # the bridge closes a silent client (4000)
                    continue
                for update in _updates(frame, job_id, position):
                    if update is _RESUBSCRIBE:
                        await _subscribe(ws, job_id, position)
                    else:
                        yield update
        except ConnectionClosed:
            pass
        code = ws.close_code
        if code == CloseCode.UNAUTHENTICATED and not callable(token_source):
            raise AuthError(f"the bridge closed the connection: {ws.close_reason or 'token'}")
        if code in (CloseCode.NORMAL, CloseCode.FORBIDDEN):
            raise JobNotWatchable(job_id, str(code), ws.close_reason or "connection refused")
        raise _Retry(f"closed {code} {ws.close_reason or ''}".strip())


async def _subscribe(ws: ClientConnection, job_id: str, position: _Position) -> None:
    frame: dict[str, Any] = {"op": "subscribe", "job_id": job_id, "ref": "watch"}
    if position.epoch is not None and position.last_id is not None:
        frame.update(epoch=position.epoch, last_id=position.last_id)
    await ws.send(json.dumps(frame))


_PONG = json.dumps({"op": "pong"})

#: A marker :func:`_updates` yields when the job must be subscribed to again, without position.
_RESUBSCRIBE = object()


def _updates(frame: dict[str, Any], job_id: str, position: _Position) -> list[Any]:
    """What one server frame means for the watch: updates to yield, or a resubscribe."""
    op = frame.get("op")
    if op == "hello":
        if frame.get("protocol") != PROTOCOL_VERSION:
            raise JobNotWatchable(job_id, "protocol", f"bridge speaks v{frame.get('protocol')}")
        return []
    if op == "subscribed":
        snapshot = frame.get("snapshot")
        if snapshot is None:
            return []  # resumed: the missed events follow
        snap = JobSnapshot.model_validate(snapshot)
        position.epoch, position.last_id = snap.epoch, snap.last_id
        return [snap]
    if op == "error":
        code = frame.get("code", "")
        if frame.get("ref") == "watch" and code in _FATAL_ERRORS:
            raise JobNotWatchable(job_id, code, frame.get("message", ""))
        if code in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL):
            raise _Retry(f"{code}: {frame.get('message', '')}")
        return []
    if op in ("event", "batch"):
        events = [frame["event"]] if op == "event" else frame["events"]
        out: list[Any] = []
        for data in events:
            if data.get("job_id") != job_id:
                continue
            if position.epoch is not None and data["epoch"] != position.epoch:
                # The job's stream was recreated while we watched: start again from its state.
                position.epoch = position.last_id = None
                return [*out, _RESUBSCRIBE]
            if position.advance(data["epoch"], data["id"]):
                out.append(parse_event(data))
        return out
    return []  # unsubscribed, or an op of a later protocol version
