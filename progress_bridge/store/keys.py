"""Redis key names. Nothing outside :mod:`progress_bridge.store` spells a key.

Every key one append touches — the job's history stream, its snapshot hash, its live feed shard,
its owner's index and its shard's running-job leases — carries the same hash tag ``{N}`` (the
job's shard number), so the atomic append stays inside one Redis Cluster slot. The shard is a
stable hash of the job id.
"""

from __future__ import annotations

import zlib

__all__ = ["KeySpace"]


class KeySpace:
    """Key names under one prefix and shard count (both come from :class:`Settings`)."""

    def __init__(self, prefix: str = "pb", shards: int = 8) -> None:
        if shards < 1:
            raise ValueError("shards must be >= 1")
        self.prefix = prefix
        self.shards = shards

    def shard_of(self, job_id: str) -> int:
        return zlib.crc32(job_id.encode()) % self.shards

    def _tag(self, job_id: str) -> str:
        return f"{self.prefix}:{{{self.shard_of(job_id)}}}"

    def stream(self, job_id: str) -> str:
        """The job's history: one entry per event, entry id = event id."""
        return f"{self._tag(job_id)}:job:{job_id}"

    def snapshot(self, job_id: str) -> str:
        """Hash with the job's epoch, last id and latest state (see :mod:`.snapshot`)."""
        return f"{self._tag(job_id)}:snap:{job_id}"

    def feed(self, shard: int) -> str:
        """Live feed shard: every event of every job in the shard, tailed by each bridge."""
        return f"{self.prefix}:{{{shard}}}:feed"

    def feed_of(self, job_id: str) -> str:
        return self.feed(self.shard_of(job_id))

    def notify(self, shard: int) -> str:
        """Prefix of the shard's notification channels (``feed_mode`` "notify"): ``<it>:job:<id>``,
        ``<it>:user:<owner>`` and ``<it>:doc:<document>`` (sharded pub/sub, same hash tag)."""
        return f"{self.prefix}:{{{shard}}}:notify"

    def job_channel(self, job_id: str) -> str:
        return f"{self.notify(self.shard_of(job_id))}:job:{job_id}"

    def room_channels(self, kind: str, name: str) -> list[str]:
        """A room's channel in every shard (its jobs hash to any): ``kind`` user or doc."""
        return [f"{self.notify(shard)}:{kind}:{name}" for shard in range(self.shards)]

    def presence(self, job_id: str) -> str:
        """Sorted set of the job's watchers across bridges, scored by expiry (server ms)."""
        return f"{self._tag(job_id)}:presence:{job_id}"

    def channel_subject(self, channel: str) -> tuple[str, str] | None:
        """What a notification channel is about: ``("job", id)``, ``("user", name)`` or
        ``("doc", name)``; None for a name that is not one of this key space's channels."""
        head, sep, rest = channel.partition("}:notify:")
        if not sep or not head.startswith(f"{self.prefix}:{{"):
            return None
        kind, sep, name = rest.partition(":")
        return (kind, name) if sep and kind in ("job", "user", "doc") else None

    def owner_index(self, owner: str, shard: int) -> str:
        """Sorted set of the owner's jobs in one shard, scored by creation time (ms)."""
        return f"{self.prefix}:{{{shard}}}:owner:{owner}"

    def owner_index_of(self, owner: str, job_id: str) -> str:
        return self.owner_index(owner, self.shard_of(job_id))

    def running(self, shard: int) -> str:
        """Sorted set of the shard's running jobs, scored by lease deadline (server ms)."""
        return f"{self.prefix}:{{{shard}}}:running"

    def running_info(self, shard: int) -> str:
        """Hash: running job id -> its lease holder's token and what a reaper needs to know."""
        return f"{self.prefix}:{{{shard}}}:running:info"

    def running_of(self, job_id: str) -> tuple[str, str]:
        """The running set and info hash of the job's shard."""
        shard = self.shard_of(job_id)
        return self.running(shard), self.running_info(shard)

    def all_feeds(self) -> list[str]:
        return [self.feed(i) for i in range(self.shards)]
