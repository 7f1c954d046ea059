"""What every job route shares: the settings, the job files, one store client, and the rule
for who may touch a job (404 when it does not exist, then 403 unless the caller owns it or is an
admin, as on the bridge).

The route groups (:mod:`web.jobs_api`, :mod:`web.export_routes`, :mod:`web.content_routes`)
each receive the same :class:`JobAccess`; the jobs router's lifespan closes it.
"""

from __future__ import annotations

from progress_bridge.access import Principal
from progress_bridge.config import Settings
from progress_bridge.events.snapshot import JobSnapshot
from progress_bridge.exceptions import ConfigError
from progress_bridge.store import AsyncEventStore
from tasks.pdf.preview import PreviewFiles
from tasks.pdf_tasks import JobFiles

from .api_errors import api_error

__all__ = ["JobAccess"]


class JobAccess:
    """The settings, files and store of the job routes, and their ownership checks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files = JobFiles(settings.data_dir)
        self._store: AsyncEventStore | None = None

    def store(self) -> AsyncEventStore:
        """The store client, made on first use (so the app starts without Redis).

        Raises:
            ConfigError: no Redis URL is configured.
        """
        current = self._store
        if current is None:
            if not self.settings.redis_url:
                raise ConfigError("PROGRESS_REDIS_URL (or REDIS_URL) is missing and has no default")
            current = self._store = AsyncEventStore.from_url(self.settings.redis_url, self.settings)
        return current

    async def aclose(self) -> None:
        """Close the store client, if one was made."""
        if self._store is not None:
            store, self._store = self._store, None
            await store.aclose()

    async def owned_snapshot(self, job_id: str, user: Principal) -> JobSnapshot:
        """The job's snapshot, if ``user`` may manage it (404, then 403)."""
        snap = await self.store().snapshot(job_id)
        if snap is None:
            raise api_error(404, "not_found", f"No job {job_id}.")
        if not user.may_manage(snap.owner):
            raise api_error(403, "forbidden", f"Job {job_id} is not yours.")
        return snap

    async def check_owner(self, job_id: str, user: Principal) -> None:
        """As :meth:`owned_snapshot` (404, then 403), with one HMGET instead of the snapshot:
        a page's images and zones are many small requests, and a job's snapshot can be large."""
        meta = await self.store().job_meta(job_id)
        if meta is None:
            raise api_error(404, "not_found", f"No job {job_id}.")
        if not user.may_manage(meta[0]):
            raise api_error(403, "forbidden", f"Job {job_id} is not yours.")

    def previews(self, job_id: str) -> PreviewFiles:
        """The job's page images and zone details (404 for an id that is no file name)."""
        try:
            return PreviewFiles(self.files.previews_dir(job_id))
        except ValueError:  # a job id the store knows but not a file name: nothing stored
            raise api_error(404, "not_found", f"Job {job_id} has no files.") from None
