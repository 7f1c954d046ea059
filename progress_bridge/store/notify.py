"""Per-job notifications (DESIGN.md option (b)): a bridge hears only the jobs its clients watch.

With ``feed_mode = "notify"`` every append also publishes the event on sharded pub/sub
(``SPUBLISH``, in the same atomic script): on its job's channel and on its owner's and
document's room channels, each tagged with the job's shard so the publish stays in the append's
slot. A bridge subscribes (``SSUBSCRIBE``) to the channels of what its connections watch, so
Redis sends each event to the bridges that need it — ``events × watching bridges`` of egress —
instead of every bridge reading every event (option (a), :class:`~.feed.FeedReader`).

Pub/sub forgets what it sends while a connection is down, so this reader reports every
subscription (first or again, after a reconnection or a slot move) through :attr:`confirmed`:
the hub then reads what it may have missed from the job's stream by id — the replay path — and
the sessions drop what they already had. A subscribe waits for its channel's confirmation
before it reads history (:meth:`watch`), so nothing falls between the history and the
notifications.

Message: ``job \\0 id \\0 epoch \\0 payload`` (the feed entry's fields).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..events.records import StoredEntry
from ..exceptions import StreamUnavailable
from .errors import REDIS_ERRORS, translate
from .keys import KeySpace

__all__ = ["JobNotifications", "decode_notification"]

log = logging.getLogger("progress_bridge.store.notify")

#: Separator of a notification's fields (none of them holds a NUL).
SEP = "\0"


def decode_notification(data: str) -> StoredEntry:
    """The entry a notification carries.

    Raises:
        ValueError: not a notification of this format.
    """
    job, event_id, epoch, payload = data.split(SEP, 3)
    return StoredEntry(job, event_id, epoch, payload)


class JobNotifications:
    """Sharded pub/sub subscriptions of one bridge process, and the entries they bring.

    ``pubsub`` is a redis-py (cluster) PubSub; it resubscribes by itself after a reconnection.
    ``confirmed(channel, again)`` is called for every subscription confirmed (``again``: the
    channel had been confirmed before — a reconnection or a slot move: entries may be missing).
    """

    def __init__(
        self,
        pubsub: Any,
        keys: KeySpace,
        confirmed: Callable[[str, bool], None] | None = None,
        *,
        block_ms: int = 1000,
    ) -> None:
        self.pubsub = pubsub
        self.keys = keys
        self.block_ms = block_ms
        self.confirmed = confirmed
        #: Channel → how many watchers asked for it (subscribed while > 0).
        self._wanted: dict[str, int] = {}
        self._seen: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self.rows = 0
        self.backlogged = False
        self.positions: dict[str, str] = {}  # the stream reader's attribute; none here
        self._changed = asyncio.Event()

    async def prime(self) -> None:
        """Nothing to prime: a subscription starts hearing at its confirmation."""

    async def watch(self, channel: str) -> None:
        """Subscribe (once per channel) and wait until Redis confirms it.

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        self._wanted[channel] = self._wanted.get(channel, 0) + 1
        if self._wanted[channel] > 1 and channel in self._seen:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(channel, []).append(waiter)
        if self._wanted[channel] == 1:
            try:
                await self.pubsub.ssubscribe(channel)
            except REDIS_ERRORS as exc:
                self._wanted[channel] -= 1
                raise translate(exc) from exc
            self._changed.set()  # a reader waiting for something to read reads now
        try:
            await asyncio.wait_for(waiter, timeout=self.block_ms / 1000 + 10)
        except TimeoutError:
            raise StreamUnavailable(f"no confirmation of the subscription to {channel}") from None

    async def unwatch(self, channel: str) -> None:
        """Drop one watcher; unsubscribe when it was the last."""
        left = self._wanted.get(channel, 0) - 1
        if left > 0:
            self._wanted[channel] = left
            return
        self._wanted.pop(channel, None)
        self._seen.discard(channel)
        with contextlib.suppress(*REDIS_ERRORS):
            await self.pubsub.sunsubscribe(channel)

    async def read(self) -> list[StoredEntry]:
        """The entries notified since the last read (waiting up to ``block_ms`` for one).

        Raises:
            StreamUnavailable: Redis is unreachable; call again.
        """
        if not self._wanted:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.block_ms / 1000)
            self.rows = 0
            return []
        out: list[StoredEntry] = []
        timeout: float | None = self.block_ms / 1000
        try:
            while True:
                message = await self.pubsub.get_sharded_message(timeout=timeout)
                if message is None:
                    break
                self._handle(message, out)
                timeout = 0.0  # take what is already there, then return
                if len(out) >= 1000:
                    break
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        self.rows = len(out)
        return out

    def _handle(self, message: dict[str, Any], out: list[StoredEntry]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if kind == "smessage":
            try:
                out.append(decode_notification(message["data"]))
            except (ValueError, TypeError) as exc:
                log.warning("skipping malformed notification on %s: %r", channel, exc)
        elif kind == "ssubscribe" and isinstance(channel, str):
            again = channel in self._seen
            self._seen.add(channel)
            for waiter in self._waiting.pop(channel, ()):
                if not waiter.done():
                    waiter.set_result(None)
            if self.confirmed is not None:
                self.confirmed(channel, again)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
