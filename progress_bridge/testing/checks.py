"""What a task author asserts about the events a job wrote: plain functions, readable failures.

Each takes the job's events (oldest first, as :func:`~progress_bridge.testing.plugin`'s
``progress_events`` returns them) and raises :class:`AssertionError` with a sentence saying what
is wrong, so a failing test reads like the contract it checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events.policy import TERMINAL_TYPES
from ..events.schema import (
    ProcessingProgress,
    ProgressEvent,
    ZoneCompleted,
    ZoneProcessing,
    ZonesDeclared,
)

__all__ = [
    "assert_exactly_one_terminal",
    "assert_lifecycle",
    "assert_percent_only_rises",
    "assert_zones_completed_in_order",
    "terminal_of",
]


def terminal_of(events: Sequence[ProgressEvent]) -> ProgressEvent | None:
    """The job's terminal event (completed, failed or cancelled), if it has one."""
    ends = [event for event in events if event.type in TERMINAL_TYPES]
    return ends[-1] if ends else None


def assert_exactly_one_terminal(
    events: Sequence[ProgressEvent], expected: str | None = None
) -> None:
    """One completed, failed or cancelled, and nothing after it (``expected``: its type)."""
    ends = [i for i, event in enumerate(events) if event.type in TERMINAL_TYPES]
    assert len(ends) == 1, f"expected exactly one terminal event, got {len(ends)}: " + ", ".join(
        events[i].type for i in ends
    )
    last = ends[0]
    assert last == len(events) - 1, (
        f"{events[last].type} is followed by {len(events) - 1 - last} event(s): "
        + ", ".join(event.type for event in events[last + 1 :])
    )
    if expected is not None:
        assert events[last].type == expected, f"the job ended {events[last].type}, not {expected}"


def assert_lifecycle(events: Sequence[ProgressEvent], expected: Sequence[str]) -> None:
    """The lifecycle events (queued, started, retrying, the end), in this order."""
    lifecycle = [
        event.type
        for event in events
        if event.type.startswith("processing_") and event.type != "processing_progress"
    ]
    assert lifecycle == list(expected), f"lifecycle {lifecycle}, expected {list(expected)}"


def assert_zones_completed_in_order(events: Sequence[ProgressEvent]) -> None:
    """Every declared zone went processing → completed (or failed) once, in reading order."""
    declared: list[tuple[int, str]] = []
    started: set[str] = set()
    finished: list[tuple[int, str]] = []
    for event in events:
        match event:
            case ZonesDeclared():
                declared.extend((zone.index, zone.zone_id) for zone in event.zones)
            case ZoneProcessing():
                started.add(event.zone_id)
            case ZoneCompleted():
                assert event.zone_id not in {z for _, z in finished}, (
                    f"zone {event.zone_id} completed twice"
                )
                assert event.zone_id in started, f"zone {event.zone_id} completed without starting"
                finished.append((event.zone_index, event.zone_id))
    expected = [zone for _, zone in sorted(declared)]
    got = [zone for _, zone in finished]
    assert got == expected, (
        f"zones completed {got}; expected each declared zone, in order: {expected}"
    )


def assert_percent_only_rises(events: Sequence[ProgressEvent]) -> None:
    """Progress never goes back (a bar that jumps backwards is a bug)."""
    last = 0.0
    for event in events:
        if isinstance(event, ProcessingProgress):
            assert event.percent >= last, (
                f"percent went back from {last} to {event.percent} (event {event.id})"
            )
            last = event.percent
