"""Where a connection without a direct writer sends its frames, and how a send that had to wait
is finished in a task.

A :class:`Sink` is the ASGI ``send`` (wrapped in an :class:`AsgiSink`) or an SSE stream
(:mod:`.sse`). Its send coroutines are driven by hand
(:meth:`~progress_bridge.bridge.connection.Connection.flush`): one that completes without
suspending costs no task switch. The first that suspends (the socket is paused for flow control)
is handed to a writer task, which resumes it with :func:`finish_send`; a writer that had to be
cancelled is ended with :func:`reap`, which leaves no reference cycle behind (DESIGN.md
invariant 6).

Why apart from :mod:`.connection`: these are the mechanics of driving a coroutine by hand and of
ending a task cleanly; the connection only decides when to use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

__all__ = ["AsgiSend", "AsgiSink", "Sink", "finish_send", "reap"]

#: The ASGI ``send`` callable (its coroutines are driven by hand).
AsgiSend = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class Sink(Protocol):
    """Where a connection without a direct writer sends its frames, and its close."""

    def send(self, frame: str | bytes) -> Coroutine[Any, Any, None]:
        """Write one frame. A coroutine, driven by hand (see the module docstring)."""
        ...

    def close(self, code: int, reason: str) -> Coroutine[Any, Any, None]: ...


class AsgiSink:
    """A WebSocket's ASGI ``send`` as a :class:`Sink` (a bound object, not closures: a held
    connection keeps one small object for it)."""

    __slots__ = ("_send",)

    def __init__(self, send: AsgiSend) -> None:
        self._send = send

    def send(self, frame: str | bytes) -> Coroutine[Any, Any, None]:
        if frame.__class__ is str:
            return self._send({"type": "websocket.send", "text": frame})
        return self._send({"type": "websocket.send", "bytes": frame})

    def close(self, code: int, reason: str) -> Coroutine[Any, Any, None]:
        return self._send({"type": "websocket.close", "code": code, "reason": reason})


async def finish_send(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Run a send coroutine that suspended in another task to its end, as a Task would.

    ``yielded`` is what the coroutine yielded: a future it waits for (or None, a bare yield).
    Wait for that future without consuming its outcome, then resume the coroutine, whose own
    ``await`` reads the result or raises the future's exception inside it. If the writer is
    cancelled meanwhile, the cancellation is thrown into the coroutine so it cleans up.
    """
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            elif getattr(yielded, "_asyncio_future_blocking", None) is not None:
                yielded._asyncio_future_blocking = False  # what Task.__step does
                await asyncio.wait((yielded,))
            else:
                coro.close()
                raise RuntimeError(f"send coroutine yielded {yielded!r}, not a future")
        except asyncio.CancelledError:
            if isinstance(yielded, asyncio.Future):
                yielded.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                coro.throw(asyncio.CancelledError())
            coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration:
            return


async def reap(task: asyncio.Task[Any]) -> None:
    """Cancel ``task``, wait for it, and clear the frames its exception's traceback holds.

    A cancelled wait leaves a cycle: the cancelled future keeps its ``CancelledError``, whose
    traceback keeps the frame that awaited the future. Cleared frames hold no locals.
    """
    task.cancel()
    try:
        await task
    except BaseException as exc:  # what it ended with is only cleaned up
        seen: set[int] = set()
        err: BaseException | None = exc
        while err is not None and id(err) not in seen:
            seen.add(id(err))
            traceback.clear_frames(err.__traceback__)
            err = err.__context__
        del exc, err
