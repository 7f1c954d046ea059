"""Typed settings, read once from the environment (prefix ``PROGRESS_``) and passed in.

Nothing else in the package reads ``os.environ``: the task base, the bridge and the demo app each
receive a :class:`Settings`. Below the environment, ``[tool.progress-bridge]`` in the working
directory's ``pyproject.toml`` gives defaults (field names, no prefix): that is where a project
names its Celery app and web app for ``progress-bridge dev``. ``REDIS_URL`` is accepted as an
alias of ``PROGRESS_REDIS_URL`` because that is the name every Redis-backed tool already uses.
Leaving it unset means "start a private embedded valkey-server" (see
:mod:`progress_bridge.store.embedded`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)

from .exceptions import ConfigError

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every knob of progress-bridge, with its unit in the name or the description."""

    model_config = SettingsConfigDict(
        env_prefix="PROGRESS_",
        extra="ignore",
        frozen=True,
        pyproject_toml_table_header=("tool", "progress-bridge"),
    )

    # -- Redis and the event store -------------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PROGRESS_REDIS_URL", "REDIS_URL"),
        description="Redis/Valkey URL; unset starts an embedded valkey-server (dev and tests).",
    )
    redis_mode: Literal["standalone", "cluster", "sentinel"] = Field(
        default="standalone",
        description="standalone: REDIS_URL is the server; cluster: REDIS_URL is any node of a "
        "Redis/Valkey Cluster; sentinel: REDIS_URL is a sentinel (see redis_sentinel_master).",
    )
    redis_sentinel_master: str | None = Field(
        default=None, description="With redis_mode sentinel: the monitored master's name."
    )
    key_prefix: str = Field(default="pb", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    feed_shards: int = Field(default=8, ge=1, le=1024, description="Live feed streams.")
    stream_maxlen: int = Field(
        default=10_000,
        ge=100,
        description="Approximate events kept per job (history) besides its zone events: each "
        "declared zone adds room for its own events, so zones are never trimmed.",
    )
    feed_mode: Literal["stream", "notify"] = Field(
        default="stream",
        description="How bridges hear of new events: stream (every bridge tails the feed "
        "shards, option (a)) or notify (per-job sharded pub/sub, each bridge hears only the "
        "jobs its clients watch, option (b)). Writers and bridges must agree.",
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
    producer_connect_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="A worker's wait for a Redis connection; with the read timeout, the longest "
        "a progress call or lifecycle handler can hold a task when Redis fails.",
    )
    producer_socket_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="A worker's wait for a Redis answer (see producer_connect_timeout_s).",
    )
    lease_s: float = Field(
        default=30.0,
        ge=1,
        description="A running job whose worker process sent no heartbeat for this long is "
        "reaped: failed (lost), or redelivered when its task is configured to be.",
    )
    heartbeat_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a worker process renews the leases of its running jobs (and "
        "notices a job whose data Redis lost, to re-state it); at most a third of lease_s.",
    )
    reaper_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="How often each worker's main process looks for expired leases; 0: never "
        "(run `progress-bridge reap` instead).",
    )
    celery_broker_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PROGRESS_CELERY_BROKER_URL", "CELERY_BROKER_URL"),
        description="Celery broker; defaults to redis_url.",
    )
    celery_result_backend: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PROGRESS_CELERY_RESULT_BACKEND", "CELERY_RESULT_BACKEND"),
        description="Celery result backend; defaults to redis_url.",
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

    # -- Bridge (WebSocket fan-out) --------------------------------------------------------------
    bridge_heartbeat_s: float = Field(
        default=15.0, gt=0, description="Server ping op interval; silence for 2x closes 4000."
    )
    bridge_ws_ping_s: float = Field(
        default=0.0,
        ge=0,
        description="WebSocket protocol ping interval (uvicorn); 0 = off: the heartbeat "
        "(ping op, 4000) covers liveness without a timer per connection.",
    )
    bridge_ws_deflate: bool = Field(
        default=True,
        description="Negotiate permessage-deflate when offered (CPU per frame per connection).",
    )
    bridge_max_connections: int = Field(default=20_000, ge=1, description="Per process (4009).")
    bridge_max_connections_per_user: int = Field(default=50, ge=1, description="Per process.")
    bridge_max_subscriptions: int = Field(default=200, ge=1, description="Per connection.")
    bridge_max_frame_bytes: int = Field(
        default=65_536, ge=256, description="Largest inbound frame; larger closes 1009."
    )
    bridge_rate_per_s: float = Field(default=20.0, gt=0, description="Inbound frames/s refill.")
    bridge_rate_burst: int = Field(default=40, ge=1, description="Inbound frames burst.")
    bridge_rate_strikes: int = Field(
        default=50, ge=2, description="Frames dropped in one flood before closing 4029."
    )
    bridge_outbox_max_frames: int = Field(
        default=20_000, ge=10, description="Queued frames per connection before closing 4008."
    )
    bridge_outbox_max_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Bytes a connection may have unread (its outbox and what its socket's "
        "transport buffers) before closing 4008.",
    )
    bridge_outbox_max_age_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection's oldest unread frame may wait (outbox or transport) "
        "before closing 4008; keep it under 2 x bridge_heartbeat_s.",
    )
    bridge_batch_max_events: int = Field(default=500, ge=1, description="Events per batch frame.")
    bridge_read_block_ms: int = Field(default=1000, ge=10, description="Feed XREAD BLOCK.")
    bridge_read_count: int = Field(default=1000, ge=1, description="Feed entries per XREAD.")
    bridge_room_jobs_limit: int = Field(
        default=50, ge=0, description="Job snapshots listed when subscribing to a user room."
    )
    bridge_redis_pool_size: int = Field(
        default=64, ge=1, description="Redis connections for subscribes and snapshots."
    )
    bridge_redis_pool_timeout_s: float = Field(
        default=10.0, gt=0, description="Wait for a pooled connection before 'unavailable'."
    )
    bridge_presence_interval_s: float = Field(
        default=2.0,
        ge=0,
        description="How often watchers hear who else watches their jobs (presence frames, at "
        "most one per job per interval, only on change); 0 turns presence off.",
    )
    bridge_presence_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="A watcher no bridge refreshes (its bridge died) leaves presence after this.",
    )
    bridge_position_check_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Every this many seconds, compare each watched job's stored position with what its "
            "watchers were sent; a gap that lasts two checks is read back from the job's stream "
            "(0: off)."
        ),
    )
    bridge_resume_wait_s: float = Field(
        default=5.0,
        ge=0,
        description="A resume (subscribe with a position) of a job the store does not have waits "
        "this long for it to reappear (Redis restarted without persistence: the producer writes "
        "it again) before answering not_found.",
    )
    bridge_close_grace_s: float = Field(
        default=5.0,
        gt=0,
        description="Served through the ASGI send (another server), a closing connection stuck "
        "on a stalled socket leaves the hub (and its limits) after this; under the bridge's "
        "own protocol it leaves at once. Also the shutdown's wait for connections to close.",
    )
    bridge_close_linger_s: float = Field(
        default=60.0,
        gt=0,
        description="How long the close frame may wait behind unread bytes for a stalled "
        "reader; then the connection is reset.",
    )
    bridge_gc_full_interval_s: float = Field(
        default=600.0,
        ge=0,
        description="The bridge server runs a full garbage collection this often instead of on "
        "heap growth (progress_bridge.gcpolicy); 0: never.",
    )

    # -- The command line: which application ``progress-bridge dev``/``serve`` run -----------
    celery_app: str | None = Field(
        default=None,
        description="The Celery app `dev` runs a worker and Flower for (as for `celery -A`).",
    )
    asgi_app: str | None = Field(
        default=None,
        description="The web app factory `serve` and `dev` run, 'module:function' taking the "
        "Settings; unset serves the bare bridge.",
    )
    demo_task: str | None = Field(
        default=None,
        description="What `dev --demo` submits: a ProgressTask 'module:task', or a function "
        "'module:function' called as (settings, owner=, speed=) that returns the job id.",
    )

    # -- PDF jobs (read by tasks/ and web/: the demo application) ---------------------------------
    max_upload_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest PDF upload, bytes (413 above)."
    )
    max_pages: int = Field(default=2_000, ge=1, description="Largest PDF, pages (422 above).")
    canvas_page_threshold: int = Field(
        default=40, ge=1, description="Documents with more pages fan out as a Celery chord."
    )
    pages_per_subtask: int = Field(default=10, ge=1, description="Pages per canvas subtask.")
    cancel_poll_s: float = Field(
        default=0.25, gt=0, description="How often a running PDF task checks for cancellation."
    )
    upload_retention_s: int = Field(
        default=86_400, ge=60, description="Uploads, results and exports older than this go."
    )
    cleanup_interval_s: float = Field(
        default=600.0, gt=0, description="How often the web app runs the retention cleanup."
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
    def _check_liveness(self) -> Self:
        if self.heartbeat_interval_s * 3 > self.lease_s:
            raise ValueError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be at most a third of "
                f"lease_s ({self.lease_s}), or one late heartbeat would reap a running job"
            )
        return self

    @model_validator(mode="after")
    def _check_production(self) -> Self:
        if self.production and self.token_secret is None:
            raise ValueError(
                "PROGRESS_TOKEN_SECRET is missing and has no default in production "
                "(PROGRESS_PRODUCTION=true); set it to a long random string"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments, then the environment, then ``[tool.progress-bridge]`` of the
        # ``pyproject.toml`` in the working directory (where a project names its apps).
        return (
            init_settings,
            env_settings,
            PyprojectTomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

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
