"""The zones of one task run: their declared shape and where each one is.

A zone moves pending → processing → completed | failed, once; ids and reading-order indexes
are unique per run. Every illegal move raises :class:`InvalidEvent` before anything is written.
The book also keeps each zone's last event and the declared pages, so the run's zones can be
written again (re-stated) after Redis lost them. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events.schema import PageInfo, ProgressEvent, ZoneInfo, ZoneStatus
from ..exceptions import InvalidEvent

__all__ = ["ZoneBook"]

_PENDING, _PROCESSING, _DONE = 0, 1, 2


class ZoneBook:
    """Declared zones, their states and the zone being processed, for one job."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._zones: dict[str, ZoneInfo] = {}
        self._state: dict[str, int] = {}
        self._indexes: set[int] = set()
        self._last: dict[str, ProgressEvent] = {}  # each zone's last event (for a re-statement)
        self._pages: dict[int, PageInfo] = {}
        #: Zones completed or failed so far.
        self.done = 0
        #: The zone being processed now, if any.
        self.current: str | None = None

    @property
    def total(self) -> int:
        """Zones declared so far."""
        return len(self._zones)

    def declare(self, infos: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None:
        """Add zones; all or none (the first refused one raises and nothing is added)."""
        ids: set[str] = set()
        indexes: set[int] = set()
        for info in infos:
            if info.zone_id in self._zones or info.zone_id in ids:
                raise InvalidEvent(f"zone {info.zone_id!r} is declared twice", job_id=self.job_id)
            if info.index in self._indexes or info.index in indexes:
                raise InvalidEvent(
                    f"zone index {info.index} of zone {info.zone_id!r} is already used",
                    job_id=self.job_id,
                )
            ids.add(info.zone_id)
            indexes.add(info.index)
        self._indexes |= indexes
        for info in infos:
            self._zones[info.zone_id] = info
            self._state[info.zone_id] = _PENDING
        for page in pages:
            self._pages[page.number] = page

    def info(self, zone_id: str) -> ZoneInfo:
        """A declared zone.

        Raises:
            InvalidEvent: the zone was not declared.
        """
        info = self._zones.get(zone_id)
        if info is None:
            raise InvalidEvent(
                f"zone {zone_id!r} was not declared (declare_zones first)", job_id=self.job_id
            )
        return info

    def check_start(self, zone_id: str) -> ZoneInfo:
        """The zone, if it may start processing (declared, not completed)."""
        info = self.info(zone_id)
        if self._state[zone_id] == _DONE:
            raise InvalidEvent(f"zone {zone_id!r} already completed", job_id=self.job_id)
        return info

    def started(self, zone_id: str, event: ProgressEvent) -> None:
        self._state[zone_id] = _PROCESSING
        self._last[zone_id] = event
        self.current = zone_id

    def check_complete(self, zone_id: str, status: str) -> ZoneInfo:
        """The zone, if it may end with ``status`` (declared, not completed yet)."""
        info = self.info(zone_id)
        if self._state[zone_id] == _DONE:
            raise InvalidEvent(f"zone {zone_id!r} completed twice", job_id=self.job_id)
        if status not in (ZoneStatus.COMPLETED, ZoneStatus.FAILED):
            raise InvalidEvent(
                f"zone status must be 'completed' or 'failed', got {status!r}", job_id=self.job_id
            )
        return info

    def completed(self, zone_id: str, event: ProgressEvent) -> None:
        self._state[zone_id] = _DONE
        self._last[zone_id] = event
        self.done += 1
        if self.current == zone_id:
            self.current = None

    def zones(self) -> list[ZoneInfo]:
        """The declared zones, in the order they were declared."""
        return list(self._zones.values())

    def pages(self) -> list[PageInfo]:
        """The declared pages, by number."""
        return [self._pages[n] for n in sorted(self._pages)]

    def last_events(self) -> list[ProgressEvent]:
        """Each started zone's last event (processing or completed), in reading order."""
        order = sorted(self._last, key=lambda zone_id: self._zones[zone_id].index)
        return [self._last[zone_id] for zone_id in order]
