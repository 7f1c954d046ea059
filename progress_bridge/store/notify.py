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
import itertools
import logging
from collections.abc import Callable
from typing import Any

from ..events.records import StoredEntry
from ..exceptions import StreamUnavailable
from .clients import aclose_client
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

    ``pubsub`` is a redis-py (cluster) PubSub; it resubscribes by itself after a reconnection
    or a slot move. ``confirmed(channel, again)`` is called for every subscription confirmed
    (``again``: the channel had been confirmed before — a reconnection or a slot move: entries
    may be missing). The hub counts its watchers: :meth:`want` when a channel gets its first,
    :meth:`unwant` when it loses its last, :meth:`heard` before reading history.
    """

    def __init__(
        self,
        pubsub: Any,
        keys: KeySpace,
        confirmed: Callable[[str, bool], None] | None = None,
        *,
        block_ms: int = 1000,
        poll_s: float | None = None,
        client: Any = None,
    ) -> None:
        """``poll_s``: wait at most this long per read call and loop until ``block_ms`` (a
        cluster's reader splits one wait over its nodes, so a message on one node would wait
        for the others' share of a long one). ``client``: the pubsub's client, closed with
        it."""
        self.pubsub = pubsub
        self.client = client
        self.keys = keys
        self.block_ms = block_ms
        self.poll_s = poll_s
        self.confirmed = confirmed
        self._wanted: set[str] = set()
        self._seen: set[str] = set()
        self._unsubscribing: set[str] = set()  # sent, not confirmed yet
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._commands: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self.rows = 0
        self.backlogged = False
        self.positions: dict[str, str] = {}  # the stream reader's attribute; none here
        self._changed = asyncio.Event()

    @property
    def channels(self) -> int:
        return len(self._wanted)

    async def prime(self) -> None:
        """Nothing to prime: a subscription starts hearing at its confirmation."""

    def want(self, channel: str) -> None:
        """Subscribe to ``channel`` (in the background, in call order with :meth:`unwant`)."""
        if channel in self._wanted:
            return
        self._wanted.add(channel)
        self._waiting.setdefault(channel, asyncio.get_running_loop().create_future())
        self._send(True, channel)

    def unwant(self, channel: str) -> None:
        """Unsubscribe from ``channel`` (in the background)."""
        if channel not in self._wanted:
            return
        self._wanted.discard(channel)
        self._seen.discard(channel)
        waiter = self._waiting.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(StreamUnavailable(f"stopped listening to {channel}"))
            waiter.exception()  # retrieved: no "never retrieved" warning when nobody awaits
        self._send(False, channel)

    async def heard(self, channels: list[str], timeout_s: float) -> None:
        """Wait until Redis has confirmed each channel's subscription (it hears from now on).

        Raises:
            StreamUnavailable: not confirmed within ``timeout_s`` (Redis unreachable).
        """
        waiters = [w for c in channels if (w := self._waiting.get(c)) is not None]
        if not waiters:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, waiters)), timeout_s)
        except TimeoutError:
            raise StreamUnavailable("Redis did not confirm the subscription in time") from None

    def _send(self, subscribe: bool, channel: str) -> None:
        self._commands.put_nowait((subscribe, channel))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_commands(), name="pb-notify-commands")

    async def _send_commands(self) -> None:
        """Send (un)subscribes in order, in batches; retried while Redis is unreachable."""
        delay = 0.05
        while not self._commands.empty():
            batch = [self._commands.get_nowait() for _ in range(self._commands.qsize())]
            for subscribe, group in itertools.groupby(batch, key=lambda c: c[0]):
                # Only what is still (un)wanted: a channel wanted again since is not dropped.
                names = [c for _, c in group if (c in self._wanted) == subscribe]
                if not names:
                    continue
                while True:
                    try:
                        if subscribe:
                            await self.pubsub.ssubscribe(*names)
                            self._changed.set()  # a reader with nothing to read reads now
                        else:
                            self._unsubscribing.update(names)
                            await self.pubsub.sunsubscribe(*names)
                        break
                    except REDIS_ERRORS as exc:
                        log.warning("(un)subscribe failed (%r); retrying in %.2fs", exc, delay)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 2.0)
                        names = [c for c in names if (c in self._wanted) == subscribe]
                        if not names:
                            break
                delay = 0.05

    async def read(self) -> list[StoredEntry]:
        """The entries notified since the last read (waiting up to ``block_ms`` for one).

        Raises:
            StreamUnavailable: Redis is unreachable; call again.
        """
        if not self.pubsub.subscribed:  # nothing to read until a subscribe is sent
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.block_ms / 1000)
            self.rows = 0
            return []
        out: list[StoredEntry] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.block_ms / 1000
        try:
            while True:
                wait = max(0.0, deadline - loop.time()) if not out else 0.0
                if self.poll_s is not None:
                    wait = min(wait, self.poll_s)
                message = await self.pubsub.get_sharded_message(timeout=wait)
                if message is not None:
                    self._handle(message, out)
                    if len(out) >= 1000:
                        break
                elif out or loop.time() >= deadline:
                    break
        except REDIS_ERRORS as exc:
            self._unsubscribing.clear()  # the connection broke: their confirmations are lost
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
            if channel not in self._wanted:
                return  # a confirmation that arrives after its unsubscribe was asked
            again = channel in self._seen
            self._seen.add(channel)
            waiter = self._waiting.get(channel)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self.confirmed is not None:
                self.confirmed(channel, again)
        elif kind == "sunsubscribe" and isinstance(channel, str):
            if channel in self._unsubscribing:  # ours (the channel may be wanted again since)
                self._unsubscribing.discard(channel)
                return
            if channel not in self._wanted:
                return
            # Not asked for: the server dropped it (its slot moved to another node). Subscribe
            # again; the cluster client follows the MOVED reply, and the new confirmation is
            # "again" (the gap is read back).
            log.info("subscription to %s dropped by the server; subscribing again", channel)
            self._send(True, channel)

    async def aclose(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await aclose_client(self.client)
