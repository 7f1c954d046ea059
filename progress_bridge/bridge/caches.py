"""What the hub remembers about jobs so that routing and first subscribes need no Redis read:
each job's owner and document (:class:`JobMeta`), and its latest snapshot (:class:`SnapshotCache`).

Both are bounded, oldest first out (:class:`~collections.OrderedDict` subclasses, so the
per-entry lookups on the routing path stay plain dict operations). Neither reads
anything: the hub fills them from routed entries and from the store's answers
(:meth:`~progress_bridge.bridge.hub.Hub.learn_jobs`, the subscribe sequence of :mod:`.service`).

Why apart from :mod:`.hub`: each cache has its own correctness argument (when an entry may be
trusted, when it must be dropped), which reads best next to the code that keeps it.
"""

from __future__ import annotations

from collections import OrderedDict

from ..events.snapshot import JobSnapshot
from .core import FeedEntry

__all__ = ["META_CACHE_SIZE", "SNAPSHOT_CACHE_SIZE", "JobMeta", "PendingRead", "SnapshotCache"]

#: Jobs whose owner and document the hub remembers (for room routing).
META_CACHE_SIZE = 100_000
#: Jobs whose latest snapshot the hub keeps for first subscribes.
SNAPSHOT_CACHE_SIZE = 1_000


class JobMeta(OrderedDict[str, tuple[str | None, str | None]]):
    """job → (owner, document), for routing entries to ``user:`` and ``document:`` rooms and
    for authorizing subscribes without a read; the least recently recorded job goes first."""

    __slots__ = ()

    def of_entry(self, entry: FeedEntry) -> tuple[str | None, str | None]:
        """The entry's job's owner and document: what the entry names, else what is known."""
        cached = self.get(entry.job_id)
        if entry.owner is not None or entry.document_id is not None:
            owner = entry.owner or (cached[0] if cached else None)
            doc = entry.document_id or (cached[1] if cached else None)
            if cached != (owner, doc):
                self.remember(entry.job_id, owner, doc)
            return owner, doc
        return cached or (None, None)

    def remember(self, job_id: str, owner: str | None, doc: str | None) -> None:
        """Record a job's owner and document, dropping the least recently recorded job if full."""
        self[job_id] = (owner, doc)
        if len(self) > META_CACHE_SIZE:
            self.popitem(last=False)

    def remember_read(self, job_id: str, owner: str, doc: str | None) -> None:
        """Record a job's owner and document read from its snapshot (a document already known
        is kept when the read has none)."""
        cached = self.get(job_id)
        self.remember(job_id, owner, doc or (cached[1] if cached else None))


class PendingRead:
    """Marks a job whose snapshot is being read (see :meth:`SnapshotCache.start_read`)."""

    __slots__ = ()


class SnapshotCache(OrderedDict[str, JobSnapshot | PendingRead]):
    """job → its snapshot as of the last entry routed for it, or the mark of a read in flight.

    Routing an entry of a job drops the job from here (the hub pops it per routed entry), so
    what is left is current.
    """

    __slots__ = ()

    def cached(self, job_id: str) -> JobSnapshot | None:
        """The job's snapshot if no entry of the job was routed since it was read, else None.

        Why it is safe to answer a subscribe with it: the subscriber registered live before
        asking, so every entry routed from now on reaches it (held, then sent if newer than the
        snapshot's ``last_id``); and any entry appended after the snapshot was read is routed
        only after this call, since routing one drops the cached copy. A herd of clients
        subscribing to one job (a reconnect storm after a bridge restart) costs one read.
        """
        snapshot = self.get(job_id)
        if isinstance(snapshot, JobSnapshot):
            self.move_to_end(job_id)
            return snapshot
        return None

    def start_read(self, job_id: str) -> PendingRead:
        """Note that a snapshot read starts now; pass the mark to :meth:`finish_read`.

        Routing an entry of the job drops the mark, so a read that may predate that entry is
        not kept — not even when another read marks the job again before it returns.
        """
        mark = self.get(job_id)
        if not isinstance(mark, PendingRead):  # none yet (or gone): reads from now on
            mark = self[job_id] = PendingRead()
            if len(self) > SNAPSHOT_CACHE_SIZE:
                self.popitem(last=False)
        return mark

    def finish_read(self, job_id: str, mark: PendingRead, snapshot: JobSnapshot) -> None:
        """Keep a snapshot read since ``mark`` was taken if nothing was routed for it since."""
        if self.get(job_id) is mark:
            self[job_id] = snapshot
