"""The position check: a safety net under both feed designs, as Centrifugo's position sync.

The hub hears a job's entries from the feed (design (a)) or from its notifications (design (b)).
If that source falls silent for a job while the job goes on — a reader left blocked on a node
that a failover took away, a subscription a reconfiguring cluster dropped without telling — the
job's watchers would wait for ever on an open connection. So every ``bridge_position_check_s``
the check reads the last stored id of each job watched by id (one pipelined ``HGET`` per job)
and compares it with the oldest position its watchers were sent. A gap seen at two checks in a
row with no progress in between is read back from the job's stream by id and routed: sessions
drop what they already had, so an entry is never sent twice. A gap that can no longer be read
back (trimmed) closes its watchers with 1012, and they resume by the protocol.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ..events.ids import parse_stream_id
from ..exceptions import StoreRejected, StreamUnavailable
from ..store.aio import AsyncEventStore
from .connection import Connection
from .core import CloseCode, FeedEntry

__all__ = ["PositionCheck"]

log = logging.getLogger("progress_bridge.bridge")

_Position = tuple[int, int]


class _Hub(Protocol):
    """What the check needs of :class:`~progress_bridge.bridge.hub.Hub`."""

    by_job: dict[str, set[Connection]]
    store: AsyncEventStore

    async def learn_meta(self, entries: list[FeedEntry]) -> None: ...

    def route(self, entries: list[FeedEntry], now: float | None = None) -> None: ...


class PositionCheck:
    """Finds watched jobs whose stored position stays ahead of what was sent, and reads the
    gap back."""

    def __init__(self, hub: _Hub, interval_s: float) -> None:
        self.hub = hub
        self.interval_s = interval_s
        #: job → the oldest position sent when the job was last seen behind.
        self._behind: dict[str, _Position] = {}
        #: Gaps read back so far (for tests and the log).
        self.gaps_read = 0

    async def run(self) -> None:
        """Check every interval until cancelled; a Redis outage waits for the next one."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except (StreamUnavailable, StoreRejected) as exc:
                log.warning("position check: %s", exc)

    def _oldest_sent(self, job_id: str) -> _Position | None:
        """The oldest position among the job's watchers by id; None while one is subscribing."""
        positions = [c.session.last_sent(job_id) for c in self.hub.by_job.get(job_id, ())]
        if not positions or any(p is None for p in positions):
            return None
        return min(p for p in positions if p is not None)

    async def check(self) -> None:
        hub = self.hub
        jobs = list(hub.by_job)
        stored = await hub.store.last_ids(jobs) if jobs else {}
        behind: dict[str, _Position] = {}
        due: list[tuple[str, _Position]] = []
        for job_id, last_id in stored.items():
            sent = self._oldest_sent(job_id)
            if sent is None or parse_stream_id(last_id) <= sent:
                continue
            if self._behind.get(job_id) == sent:
                due.append((job_id, sent))  # behind at the last check too, and no progress
            else:
                behind[job_id] = sent
        self._behind = behind
        for job_id, sent in due:
            await self._read_back(job_id, sent)

    async def _read_back(self, job_id: str, sent: _Position) -> None:
        hub = self.hub
        replay = await hub.store.entries_after(job_id, f"{sent[0]}-{sent[1]}")
        conns = set(hub.by_job.get(job_id, ()))
        if not replay.recovered:
            log.warning("job %s: its watchers missed entries that were trimmed; closing", job_id)
            for conn in conns:
                conn.session.close(CloseCode.RESTART, f"events of job {job_id} were missed")
                conn.flush()
            return
        batch = []
        for stored in replay.entries:
            try:
                batch.append(FeedEntry.from_stored(stored))
            except ValueError as exc:
                log.warning("skipping malformed entry %s: %r", stored.id, exc)
        if batch:
            await hub.learn_meta(batch)
            hub.route(batch)
        self.gaps_read += 1
        log.warning(
            "job %s: %d entries its live source did not bring were read back from its stream",
            job_id,
            len(batch),
        )
