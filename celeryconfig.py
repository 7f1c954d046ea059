"""Celery configuration of the progress-bridge apps, read from :class:`Settings` (one place).

``celery -A tasks worker`` loads this through ``tasks/app.py``. Broker and result backend default
to the progress store's Redis URL (``REDIS_URL`` / ``PROGRESS_REDIS_URL``); Celery's own
``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND`` override them. With neither set, the worker
refuses to start: ``progress-bridge dev`` starts an embedded server and passes its URL down.
"""

from __future__ import annotations

from progress_bridge.capture.celery_config import broker_and_backend
from progress_bridge.config import Settings
from tasks.limits import PdfLimits  # (does not import tasks.app, which is loading this module)

progress_settings = Settings.from_env()
broker_url, result_backend = broker_and_backend(progress_settings)

# Wire format: JSON only, so nothing executes code from a message.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# Events for Flower and our own `task-progress`: the worker sends task events (like `-E`) and the
# publisher sends `task-sent`, so Flower knows a job from the moment it is queued.
worker_send_task_events = True
task_send_sent_event = True
# STARTED state in the result backend, so AsyncResult shows a job has begun before any progress.
task_track_started = True

# A job is acknowledged after it ends, so a worker that dies mid-task does not lose it: with
# reject_on_worker_lost the broker redelivers the message and the job starts a new attempt
# (processing_started attempt+1). Tasks that must not run twice set reject_on_worker_lost=False
# and end failed with lost=True instead (see docs/operators.md).
task_acks_late = True
task_reject_on_worker_lost = True
# Long PDF jobs: take one message at a time, so a busy child does not hold others back.
worker_prefetch_multiplier = 1
# Redis redelivers an unacknowledged message after this long; keep it above the longest job.
broker_transport_options = {"visibility_timeout": 3600}
result_expires = progress_settings.ttl_after_end_s
broker_connection_retry_on_startup = True

# -- Bounds of a PDF job (docs/operators.md, "Bounds of a PDF job") ----------------------------
# Read from PROGRESS_PDF_* / PROGRESS_WORKER_MAX_MEMORY_MIB (tasks/limits.py; proposed as
# Settings fields). The tasks compute each call's soft and hard time limits from its page count.
pdf_limits = PdfLimits.from_env()
# A pool process whose peak memory went above this is replaced after its task, so the memory a
# large document took does not stay held by an idle worker.
worker_max_memory_per_child = pdf_limits.worker_max_memory_per_child_kib
