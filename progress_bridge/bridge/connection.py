"""The I/O side of one socket: its :class:`~progress_bridge.bridge.core.Session`, its writer
task, and the fast path that writes without one.

Routing only appends to outboxes; then each connection that got frames and whose writer is idle
is written to at once, from the feed reader's task (:meth:`Connection.flush`: pre-built frame
bytes through a :class:`~progress_bridge.bridge.direct.DirectWriter`, or the ASGI ``send``
coroutine driven by hand — with a socket that keeps up it completes without suspending: no task
switch, no await). Only a send that suspends (the socket is paused for flow control) is handed
to the connection's own writer task, which finishes it and writes what queued meanwhile, so a
slow socket only ever delays itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .core import CloseCode, FeedEntry, Session, TakeResult, ws_frame
from .direct import DirectWriter
from .metrics import BridgeMetrics

__all__ = ["Close", "Connection", "Send"]

log = logging.getLogger("progress_bridge.bridge")

#: Writes one frame. Must return a coroutine (``async def``): :meth:`Connection.flush` drives
#: it by hand, so that a send that does not suspend costs no task switch.
Send = Callable[[str | bytes], Coroutine[Any, Any, None]]
Close = Callable[[int, str], Awaitable[None]]

#: A send that suspended in :meth:`Connection.flush`: the coroutine, what it yielded, the frames
#: still to write after it, and what the whole take carried (for metrics).
_Handoff = tuple[Coroutine[Any, Any, None], Any, list[str | bytes], TakeResult]


async def _finish_send(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
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


class Connection:
    """The I/O side of one socket: its :class:`Session`, writer task and end signal."""

    _next_id = 0

    def __init__(
        self,
        session: Session,
        send: Send,
        close: Close,
        *,
        remote: str = "",
        metrics: BridgeMetrics | None = None,
        close_grace_s: float = 5.0,
        close_linger_s: float = 60.0,
        direct: DirectWriter | None = None,
    ) -> None:
        Connection._next_id += 1
        self.id = Connection._next_id
        self.session = session
        self.remote = remote
        self.opened_at = time.time()
        self._send = send
        self._close = close
        #: Writes pre-built frame bytes to the socket when it can take them now (None: every
        #: frame goes through ``send``).
        self.direct = direct
        self._metrics = metrics
        self._grace = close_grace_s
        #: How long a close frame may wait for a stalled socket to drain before it is dropped.
        self.linger = close_linger_s
        self._counted = False
        self._coalesced_reported = 0
        self._wake = asyncio.Event()
        self._wake.set()  # the hello frame is queued
        #: Set while frames taken from the session are not all written (by the writer, or by a
        #: send that suspended in :meth:`flush`): nothing else may be written then.
        self.sending_since: float | None = None
        self._handoff: _Handoff | None = None
        self._broken = False
        #: Times the writer task woke up (the fast path does not wake it).
        self.wakeups = 0
        self._close_seen: float | None = None
        #: Resolved when the connection must end (closed by us, or the writer failed).
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writer = asyncio.create_task(self._run_writer(), name=f"pb-writer-{self.id}")

    def wake(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def flush(self) -> TakeResult | None:
        """Write what the session has queued now, from the calling task (the fast path).

        Only when the writer is idle — not between a take and the end of its writes, no
        suspended send pending, not closing; otherwise the writer is woken, as before. Each
        frame's send coroutine is driven by hand: one that completes without suspending (the
        socket is writable) costs no task switch and no await. The first one that suspends
        is handed, half-run, to the writer task, which finishes it, then writes the rest of
        the take, then anything queued meanwhile — so frames leave in outbox order. Returns
        what was written here to the end (for the caller's metrics), else None.
        """
        session = self.session
        if (
            self.sending_since is not None
            or session.close_code is not None
            or self._broken
            or self.done.done()
        ):
            self.wake()
            return None
        direct = self.direct
        if direct is not None and direct.ready():
            # One event: the same bytes for every session of this format. Anything else is
            # framed here. The transport buffers what the socket does not take at once, and
            # pauses this path (ready() turns False) past its high-water mark.
            result = session.take()
            try:
                if result.single is not None:
                    direct.write(result.single.wire_frame(session.format, direct.deflate_bits))
                else:
                    for frame in result.frames:
                        direct.write(ws_frame(frame, direct.deflate_bits))
            except Exception as exc:
                self._direct_failed(exc)
                return None
            return result if result.frames else None
        result = session.take()
        frames = result.frames
        send = self._send
        for i in range(len(frames)):
            coro = send(frames[i])
            try:
                yielded = coro.send(None)
            except StopIteration:
                continue
            except Exception as exc:  # the peer went away mid-send: the writer ends quietly
                log.debug("inline send failed: %r", exc, extra={"conn": self.id})
                self._broken = True
                self.wake()
                return None
            # Not writable now: the writer task takes over from here.
            self._handoff = (coro, yielded, frames[i + 1 :], result)
            self.sending_since = time.monotonic()
            self.wake()
            return None
        return result if frames else None

    def write_now(self, entry: FeedEntry) -> bool:
        """The live fast path for one entry: its shared frame bytes written to the socket now.

        Only with a direct writer whose socket takes data now, and when nothing of this
        connection is queued or being written; True if written (the session marked it sent),
        False if the caller must :meth:`Session.deliver` it instead.
        """
        direct = self.direct
        if (
            direct is None
            or self.sending_since is not None
            or self._broken
            or not direct.ready()
            or not self.session.deliver_now(entry)
        ):
            return False
        try:
            direct.write(entry.wire_frame(self.session.format, direct.deflate_bits))
        except Exception as exc:
            self._direct_failed(exc)
        return True

    def _direct_failed(self, exc: Exception) -> None:
        """The transport is gone: the writer ends quietly, as after a failed inline send."""
        log.debug("direct write failed: %r", exc, extra={"conn": self.id})
        self._broken = True
        self.wake()

    def coalesced_delta(self) -> int:
        """Updates the session coalesced since the last call (or report), marked reported."""
        delta = self.session.coalesced - self._coalesced_reported
        self._coalesced_reported += delta
        return delta

    def poke(self, now: float) -> None:
        """Called by the sweeper once the session decided to close: wake the writer so it
        sends the close frame. A writer still stuck in a send after the grace (a stalled peer
        that does not drain its socket) is detached: :attr:`done` resolves, so the connection
        leaves the hub and its limits, while the writer lingers (up to :attr:`linger`) to send
        the close frame should the peer read again."""
        if self.session.close_code is None or self.done.done():
            return
        self.count_close()
        if self._close_seen is None:
            self._close_seen = now
        if self.sending_since is None:
            self.wake()
        elif now - self._close_seen > self._grace:
            self._finish()

    def report_coalesced(self) -> None:
        """Add the session's coalesced updates since the last report to the metric."""
        delta = self.session.coalesced - self._coalesced_reported
        if delta and self._metrics is not None:
            self._coalesced_reported += delta
            self._metrics.coalesced.inc(delta)

    def count_close(self) -> None:
        """Count the decided close once, when it is decided (not when the frame gets out)."""
        code = self.session.close_code
        if self._counted or code is None:
            return
        self._counted = True
        if self._metrics is not None:
            self._metrics.closed.labels(str(code)).inc()
            if code == CloseCode.SLOW_CONSUMER:
                self._metrics.closed_slow.inc()
        log.info(
            "closing connection",
            extra={
                "conn": self.id,
                "user": self.session.principal.user,
                "code": code,
                "reason": self.session.close_reason,
            },
        )

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    async def _run_writer(self) -> None:
        session, metrics = self.session, self._metrics
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self.wakeups += 1
                if self._broken:
                    return  # an inline send found the peer gone
                handoff, self._handoff = self._handoff, None
                if handoff is not None:
                    # A send that suspended in flush(): finish it first (sending_since is set).
                    coro, yielded, frames, result = handoff
                    await _finish_send(coro, yielded)
                else:
                    if session.close_code is not None:
                        break
                    result = session.take()
                    if session.coalesced != self._coalesced_reported:
                        self.report_coalesced()
                    frames = result.frames
                    if not frames:
                        continue
                    self.sending_since = time.monotonic()
                for frame in frames:
                    if session.close_code is not None:
                        break
                    await self._send(frame)
                self.sending_since = None
                if session.close_code is not None:
                    break
                if metrics is not None:
                    metrics.frames_sent.inc(len(result.frames))
                    if result.events:
                        metrics.events_relayed.inc(result.events)
                        if result.oldest_ts:
                            metrics.event_age.observe(max(0.0, time.time() - result.oldest_ts))
            self.count_close()
            code = session.close_code
            assert code is not None
            # The close frame waits behind whatever the socket has not drained yet.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._close(code, session.close_reason), self.linger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-send: end quietly
            log.debug("writer ended: %r", exc, extra={"conn": self.id})
        finally:
            if self._handoff is not None:  # cancelled before it could finish the send
                self._handoff[0].close()
                self._handoff = None
            self.sending_since = None
            self._finish()

    def describe(self, now: float) -> dict[str, Any]:
        s = self.session
        return {
            "id": self.id,
            "user": s.principal.user,
            "admin": s.principal.admin,
            "remote": self.remote,
            "format": s.format.value,
            "connected_s": round(time.time() - self.opened_at, 3),
            "jobs": sorted(s.jobs),
            "rooms": sorted(s.rooms),
            "outbox_depth": s.outbox_depth,
            "outbox_bytes": s.outbox_bytes,
            "outbox_age_s": round(s.outbox_age(now), 3),
            "acks": dict(s.acks),
            "coalesced": s.coalesced,
            "closing": s.close_code,
        }
