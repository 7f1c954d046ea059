"""Per-connection limits of the protocol core, with their defaults taken from
:class:`~progress_bridge.config.Settings` (one definition of each default)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ...config import Settings

__all__ = ["Limits"]

#: Limits field → the setting it comes from.
_SETTING_OF = {
    "heartbeat_s": "bridge_heartbeat_s",
    "max_frame_bytes": "bridge_max_frame_bytes",
    "max_subscriptions": "bridge_max_subscriptions",
    "rate_per_s": "bridge_rate_per_s",
    "rate_burst": "bridge_rate_burst",
    "rate_strikes": "bridge_rate_strikes",
    "outbox_max_frames": "bridge_outbox_max_frames",
    "outbox_max_bytes": "bridge_outbox_max_bytes",
    "outbox_max_age_s": "bridge_outbox_max_age_s",
    "batch_max_events": "bridge_batch_max_events",
}


def _default(field: str) -> Any:
    return Settings.model_fields[_SETTING_OF[field]].default


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (``docs/protocol.md``, *Limits and heartbeat*)."""

    heartbeat_s: float = _default("heartbeat_s")
    max_frame_bytes: int = _default("max_frame_bytes")
    max_subscriptions: int = _default("max_subscriptions")
    rate_per_s: float = _default("rate_per_s")
    rate_burst: int = _default("rate_burst")
    rate_strikes: int = _default("rate_strikes")
    outbox_max_frames: int = _default("outbox_max_frames")
    outbox_max_bytes: int = _default("outbox_max_bytes")
    outbox_max_age_s: float = _default("outbox_max_age_s")
    batch_max_events: int = _default("batch_max_events")

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(**{f.name: getattr(settings, _SETTING_OF[f.name]) for f in fields(cls)})
