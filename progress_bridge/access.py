"""Who may see and manage a job: the authorization policy, in one place. Pure; no I/O.

A token names a user (``sub``), optionally ``admin``, and optionally ``jobs`` granted besides the
user's own (``docs/protocol.md``). The bridge (subscribes, rooms, snapshots) and the web app
(job routes) ask the same :class:`Principal`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection or request acts for: the token's ``sub``, ``admin``, ``jobs``, ``exp``."""

    user: str
    admin: bool = False
    jobs: frozenset[str] = frozenset()
    #: When the token stops being valid (Unix seconds; None: never).
    expires_at: float | None = None

    def may_watch(self, job_id: str, owner: str | None) -> bool:
        """A user sees the jobs they own and those their token grants; an admin sees all."""
        return self.admin or (owner is not None and owner == self.user) or job_id in self.jobs

    def may_manage(self, owner: str | None) -> bool:
        """Cancel, export, download: the owner or an admin (a grant lets one watch only)."""
        return self.admin or (owner is not None and owner == self.user)

    def may_join_user_room(self, name: str) -> bool:
        """A ``user:<name>`` room: that user's own jobs, for that user or an admin."""
        return self.admin or name == self.user
