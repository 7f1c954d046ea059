"""The I/O side of one socket: its :class:`~progress_bridge.bridge.core.Session`, how its frames
reach the socket, how it ends.

Two ways to the socket:

- **Direct** (the bridge's own uvicorn protocol, :mod:`.uvicorn_ws`): frames are written to the
  transport at once, from whatever task routed them (:meth:`Connection.flush`,
  :meth:`Connection.write_now`) — no task switch, no await. The protocol calls the connection
  back (:class:`~progress_bridge.bridge.direct.Listener`) with client frames, when its paused
  transport drains, and when the peer is gone. A held connection has no task and no coroutine;
  one is started only to carry out a subscribe (a store read), and reading pauses meanwhile so
  frames are handled in order. A close is written behind what the transport buffers, and the
  connection leaves the hub at once.
- **Through a sink** (any other server: the ASGI ``send`` wrapped in an
  :class:`~.sinks.AsgiSink`; or an SSE stream, :mod:`.sse`): each frame's send coroutine is
  driven by hand — one that completes without suspending costs no task switch. The first that
  suspends (the socket is paused for flow control) is handed to a writer task made for it, which
  finishes it (:func:`~.sinks.finish_send`), writes what queued meanwhile, and ends. The
  endpoint's loop awaits ``receive()``.

A closed connection leaves no reference cycle behind (DESIGN.md invariant 6;
``tests/integration/test_bridge_memory.py``): nothing here refers back to the connection once it
has ended, the protocol detaches its listener, and a writer task that had to be cancelled is
reaped with its traceback frames cleared (:func:`~.sinks.reap`).

Why one module: :class:`Connection` is one per-socket state machine whose write paths, op queue
and close share the same few flags on the per-delivery path, and a helper object per connection
would cost every held connection memory and a reference back (a cycle); what is not that class
lives in :mod:`.sinks` and :mod:`.backlog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any, Protocol

from .backlog import backlog_age
from .core import Ack, ClientOp, CloseCode, FeedEntry, Pong, Session, TakeResult, ws_frame
from .direct import DirectWriter
from .metrics import BridgeMetrics
from .sinks import Sink, finish_send, reap

__all__ = ["Connection", "Handler"]

log = logging.getLogger("progress_bridge.bridge")


class Handler(Protocol):
    """What a connection needs from its bridge (one object per bridge, not per connection)."""

    metrics: BridgeMetrics
    close_grace_s: float
    close_linger_s: float

    async def carry_out(self, conn: Connection, op: ClientOp) -> None: ...

    def observe_ack(self, session: Session, op: Ack) -> None: ...

    def finished(self, conn: Connection) -> None:
        """The connection ended (or decided to close): it leaves the hub. Called once."""


class Connection:
    """One WebSocket connection of the bridge (see the module docstring)."""

    __slots__ = (
        "_checked_at",
        "_closing",
        "_coalesced_reported",
        "_counted",
        "_finished",
        "_handler",
        "_handoff",
        "_marks",
        "_op",
        "_pending",
        "_seen_written",
        "_since_close",
        "_sink",
        "_unread",
        "_writer",
        "broken",
        "client",
        "direct",
        "handoffs",
        "id",
        "opened_at",
        "sending_since",
        "session",
    )

    _next_id = 0

    def __init__(
        self,
        session: Session,
        handler: Handler | None = None,
        *,
        direct: DirectWriter | None = None,
        sink: Sink | None = None,
        client: tuple[str, int] | None = None,
    ) -> None:
        Connection._next_id += 1
        self.id = Connection._next_id
        self.session = session
        self.client = client
        self.opened_at = time.time()
        #: Writes frames to the socket at once (None: through ``send``).
        self.direct = direct
        #: Takes the frames otherwise (ASGI ``send``, SSE).
        self._sink = sink
        self._handler = handler
        #: Set while frames taken from the session are not all written (ASGI: a send that
        #: suspended is being finished by the writer task); nothing else may be written then.
        self.sending_since: float | None = None
        #: Times a send had to be finished by a task (the fast path never needs one).
        self.handoffs = 0
        #: The peer went away mid-write.
        self.broken = False
        self._handoff: tuple[Coroutine[Any, Any, None], Any, list[str | bytes], TakeResult] | None
        self._handoff = None
        self._writer: asyncio.Task[None] | None = None
        self._op: asyncio.Task[None] | None = None
        self._pending: list[str | bytes] | None = None
        self._marks: deque[tuple[float, int]] | None = None
        self._seen_written = 0
        self._unread = 0
        self._checked_at = 0.0
        self._closing = False
        self._finished = False
        self._counted = False
        self._since_close: float | None = None
        self._coalesced_reported = 0

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def remote(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else ""

    # -- outbound ------------------------------------------------------------------------------

    def flush(self) -> TakeResult | None:
        """Write what the session has queued, now, from the calling task (the fast path).

        Direct: when the transport takes data now; otherwise the frames wait in the outbox
        (progress updates coalesce there) for :meth:`on_writable`. ASGI: each frame's send
        coroutine is driven by hand; the first that suspends is handed to a writer task,
        which finishes it and writes the rest, so frames leave in outbox order. A decided
        close is sent instead. Returns what was written here (for the caller's metrics).
        """
        session = self.session
        if session.close_code is not None:
            self._close()
            return None
        if self._finished or self.broken:
            return None
        direct = self.direct
        if direct is not None:
            if not direct.ready():
                return None
            result = session.take()
            try:
                if result.single is not None:
                    direct.write(result.single.wire_frame(session.format, direct.deflate_bits))
                else:
                    for frame in result.frames:
                        direct.write(ws_frame(frame, direct.deflate_bits))
            except Exception as exc:
                self._failed(exc)
                return None
            return result if result.frames else None
        sink = self._sink
        if self.sending_since is not None or sink is None:
            return None  # the writer task writes it after the send in flight
        result = session.take()
        frames = result.frames
        for i in range(len(frames)):
            coro = sink.send(frames[i])
            try:
                yielded = coro.send(None)
            except StopIteration:
                continue
            except Exception as exc:
                self._failed(exc)
                return None
            # Not writable now: a writer task takes over from here.
            self._handoff = (coro, yielded, frames[i + 1 :], result)
            self.sending_since = time.monotonic()
            self._start_writer()
            return None
        return result if frames else None

    def write_now(self, entry: FeedEntry) -> bool:
        """The live fast path for one entry: its shared frame bytes written to the socket now.

        Only with a direct writer whose transport takes data now, and when nothing of this
        connection is queued; True if written (the session marked it sent), False if the
        caller must :meth:`Session.deliver` it instead.
        """
        direct = self.direct
        if direct is None or not direct.ready() or not self.session.deliver_now(entry):
            return False
        try:
            direct.write(entry.wire_frame(self.session.format, direct.deflate_bits))
        except Exception as exc:
            self._failed(exc)
        return True

    def on_writable(self) -> None:
        """The transport drained after a pause: write what queued meanwhile."""
        self._count(self.flush())

    def _failed(self, exc: Exception) -> None:
        """The peer went away mid-write: write nothing more; its disconnect follows."""
        log.debug("write failed: %r", exc, extra={"conn": self.id})
        self.broken = True

    def _count(self, result: TakeResult | None) -> None:
        if result is not None and self._handler is not None:
            self._handler.metrics.written(len(result.frames), result.events, result.oldest_ts)

    def buffered(self) -> int:
        """Bytes this process holds for the socket: the outbox, and the transport's buffer."""
        direct = self.direct
        return self.session.outbox_bytes + (direct.transport_buffered() if direct else 0)

    def coalesced_delta(self) -> int:
        """Updates the session coalesced since the last call (or report), marked reported."""
        delta = self.session.coalesced - self._coalesced_reported
        self._coalesced_reported += delta
        return delta

    # -- the ASGI writer -----------------------------------------------------------------------

    def _start_writer(self) -> None:
        if self._writer is None:
            self.handoffs += 1
            self._writer = asyncio.get_running_loop().create_task(
                self._write_on(), name=f"pb-writer-{self.id}"
            )

    async def _write_on(self) -> None:
        """Finish the send that suspended in :meth:`flush`, write the rest and what queued
        meanwhile until caught up, then end; or send the decided close."""
        session, sink = self.session, self._sink
        assert sink is not None  # started only for a connection with a sink
        try:
            handoff, self._handoff = self._handoff, None
            if handoff is not None:
                coro, yielded, frames, result = handoff
                await finish_send(coro, yielded)
                while session.close_code is None:
                    for frame in frames:
                        if session.close_code is not None:
                            break
                        await sink.send(frame)
                    self._count(result)
                    if self.session.coalesced != self._coalesced_reported and self._handler:
                        self._handler.metrics.coalesced.inc(self.coalesced_delta())
                    result = session.take()
                    frames = result.frames
                    if not frames:
                        break
            self.sending_since = None
            code = session.close_code
            if code is not None:
                self.count_close()
                with contextlib.suppress(Exception):
                    await sink.close(code, session.close_reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-send: end quietly
            self._failed(exc)
        finally:
            if self._handoff is not None:  # cancelled before it could finish the send
                self._handoff[0].close()
                self._handoff = None
            self.sending_since = None
            self._writer = None

    # -- inbound -------------------------------------------------------------------------------

    def handle(self, data: str | bytes) -> ClientOp | None:
        """Take one client frame; the op left to carry out (a subscribe or unsubscribe)."""
        session = self.session
        op = session.receive(data, time.monotonic())
        if session.outbox_depth or session.close_code is not None:
            self.flush()  # an error frame, or a close
        if op is None or isinstance(op, Pong):
            return None
        if isinstance(op, Ack):
            if self._handler is not None:
                self._handler.observe_ack(session, op)
            return None
        return op

    def on_message(self, data: str | bytes) -> None:
        """A client frame from the protocol (direct). A subscribe is carried out in a task;
        reading pauses until it is done, and frames already read wait their turn."""
        if self._op is not None:
            if self._pending is None:
                self._pending = []
            self._pending.append(data)
            return
        op = self.handle(data)
        if op is not None:
            self._start_op(op)

    def _start_op(self, op: ClientOp) -> None:
        if self.direct is not None:
            self.direct.pause_reading()
        self._op = asyncio.get_running_loop().create_task(self._carry_out(op))

    async def _carry_out(self, op: ClientOp) -> None:
        try:
            if self._handler is not None:
                await self._handler.carry_out(self, op)
        except Exception:
            log.exception("connection failed", extra={"conn": self.id})
            self.session.close(CloseCode.INTERNAL, "internal error")
        finally:
            self._op = None
        self.flush()
        while self._pending and self._op is None and not self._finished:
            op2 = self.handle(self._pending.pop(0))
            if op2 is not None:
                self._start_op(op2)
                return
        self._pending = None
        if self.direct is not None and not self._finished:
            self.direct.resume_reading()

    def on_disconnect(self) -> None:
        """The peer closed or is gone (or the server shuts down): the connection ends."""
        self._finish()

    def on_keepalive_timeout(self) -> None:
        """A protocol ping went unanswered: 4008 if frames wait unread (the ping waited behind
        them), else 1011."""
        session = self.session
        if session.close_code is None:
            stuck = session.outbox_depth or (self.direct is not None and self.direct.unread())
            if stuck:
                session.close(CloseCode.SLOW_CONSUMER, "slow consumer: a ping waited unread")
            else:
                session.close(CloseCode.INTERNAL, "no answer to protocol pings")
        self._close()

    # -- heartbeats, backlog, closing ------------------------------------------------------------

    def tick(self, now: float) -> bool:
        """The sweeper's check (twice a second): heartbeat and the slow-consumer bound, counting
        what was written but not read yet. Returns "flush me" (a ping was queued, or a close).

        Asking the socket costs a syscall, so it is asked only when something was written
        since a check that found everything read, and then at most once a second, unless
        frames are waiting unread (then at every sweep). The age of what is unread comes from
        :func:`~.backlog.backlog_age`.
        """
        direct, session = self.direct, self.session
        if direct is None or session.close_code is not None:
            return session.tick(now)
        written = direct.written
        if not self._unread and (written == self._seen_written or now - self._checked_at < 1.0):
            return session.tick(now)
        self._seen_written, self._checked_at = written, now
        unread = self._unread = direct.unread()
        if not unread:
            self._marks = None
            return session.tick(now)
        marks = self._marks
        if marks is None:
            marks = self._marks = deque()
        return session.tick(now, unread, backlog_age(marks, now, written, written - unread))

    def poke(self, now: float) -> None:
        """The sweeper's follow-up on a decided close (ASGI: the grace and the linger)."""
        if self.session.close_code is None or self._finished:
            return
        self._close()
        if self._since_close is None:
            self._since_close = now
        waited = now - self._since_close
        handler = self._handler
        grace = handler.close_grace_s if handler else 5.0
        if waited > grace:
            self._finish()  # stuck in a send: stop counting it; the writer lingers
        linger = handler.close_linger_s if handler else 60.0
        if waited > linger and self._writer is not None and not self._writer.done():
            asyncio.get_running_loop().create_task(reap(self._writer))

    def _close(self) -> None:
        """Carry out the session's decided close, once."""
        if self._closing:
            return
        self._closing = True
        self.count_close()
        session = self.session
        assert session.close_code is not None
        direct = self.direct
        if direct is not None:
            linger = self._handler.close_linger_s if self._handler else 60.0
            with contextlib.suppress(Exception):
                direct.close(session.close_code, session.close_reason, linger)
            self._finish()
        elif self._writer is None and self._sink is not None:
            self._start_writer()  # sends the close (after a send in flight, if any)

    def count_close(self) -> None:
        """Count the decided close once, when it is decided (not when the frame gets out)."""
        code = self.session.close_code
        if self._counted or code is None:
            return
        self._counted = True
        if self._handler is not None:
            metrics = self._handler.metrics
            metrics.closed.labels(str(code)).inc()
            if code == CloseCode.SLOW_CONSUMER:
                metrics.closed_slow.inc()
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
        if not self._finished:
            self._finished = True
            if self._handler is not None:
                self._handler.finished(self)

    async def ended(self, linger: bool = True) -> None:
        """The ASGI endpoint's last step: let a writer get the close frame out (within the
        linger, unless ``linger`` is False: the peer is known gone), then reap it."""
        self._finish()
        writer = self._writer
        if writer is None:
            return
        if linger and self.session.close_code is not None and not self.broken:
            wait = self._handler.close_linger_s if self._handler else 60.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), wait)
        if not writer.done():
            await reap(writer)

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
            "unread_bytes": self.direct.unread() if self.direct is not None else 0,
            "acks": dict(s.acks),
            "coalesced": s.coalesced,
            "closing": s.close_code,
        }
