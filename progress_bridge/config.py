"""Typed settings, read once from the environment (prefix ``PROGRESS_``) and passed in.

Nothing else in the package reads ``os.environ``: the task base, the bridge and the demo app each
receive a :class:`Settings`. ``REDIS_URL`` is accepted as an alias of ``PROGRESS_REDIS_URL``
because that is the name every Redis-backed tool already uses. Leaving it unset means "start a
private embedded valkey-server" (see :mod:`progress_bridge.embedded`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .exceptions import ConfigError

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every knob of progress-bridge, with its unit in the name or the description."""

    model_config = SettingsConfigDict(env_prefix="PROGRESS_", extra="ignore", frozen=True)

    # -- Redis and the event store -------------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PROGRESS_REDIS_URL", "REDIS_URL"),
        description="Redis/Valkey URL; unset starts an embedded valkey-server (dev and tests).",
    )
    key_prefix: str = Field(default="pb", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    feed_shards: int = Field(default=8, ge=1, le=1024, description="Live feed streams.")
    stream_maxlen: int = Field(
        default=10_000, ge=100, description="Approximate events kept per job (history)."
    )
    feed_maxlen: int = Field(
        default=100_000, ge=1_000, description="Approximate entries kept per feed shard."
    )
    ttl_after_end_s: int = Field(
        default=86_400, ge=1, description="Replay window after a job's terminal event."
    )
    idle_ttl_s: int = Field(
        default=7 * 86_400, ge=60, description="A job that stops writing vanishes after this."
    )

    # -- Producer (ProgressTask) ---------------------------------------------------------------
    progress_max_rate_hz: float = Field(
        default=10.0, gt=0, description="Progress writes per second per job; extra ones coalesce."
    )
    outage_buffer_events: int = Field(
        default=10_000, ge=10, description="Events held in memory while Redis is unreachable."
    )

    # -- Bridge and web app --------------------------------------------------------------------
    production: bool = Field(default=False, description="Refuse insecure defaults when true.")
    token_secret: SecretStr | None = Field(
        default=None, description="HMAC secret for tokens; required when production is true."
    )
    token_ttl_s: int = Field(default=12 * 3600, ge=60)
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to open the WebSocket (comma-separated in the environment); "
        "same-origin requests are always allowed.",
    )
    data_dir: Path = Field(
        default=Path("var"), description="Uploads and exports live here (generated names only)."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, data: object) -> object:
        if isinstance(data, dict):
            raw = data.get("allowed_origins")
            if isinstance(raw, str):
                data = {**data, "allowed_origins": [o.strip() for o in raw.split(",") if o.strip()]}
        return data

    @model_validator(mode="after")
    def _check_production(self) -> Self:
        if self.production and self.token_secret is None:
            raise ValueError(
                "PROGRESS_TOKEN_SECRET is missing and has no default in production "
                "(PROGRESS_PRODUCTION=true); set it to a long random string"
            )
        return self

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read the environment; raise :class:`ConfigError` with a readable message if invalid."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(
                f"PROGRESS_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                if err["loc"]
                else err["msg"]
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from None
