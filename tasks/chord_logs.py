"""Celery's chord errors for a cancelled split job, told as what they are: one INFO line."""

from __future__ import annotations

import logging
import re

from .job_control import job_of_part

__all__ = ["RevokedChordFilter", "install_log_filter"]


class RevokedChordFilter(logging.Filter):
    """Turns Celery's ERROR for a chord whose part was revoked into one INFO line.

    When a part is revoked (a cancel, or the job failed by a sibling part, after which the
    others stop), Celery's result backend fails the chord with
    ``ChordError("Dependency <part> raised TaskRevokedError(...)")`` and logs it with
    ``logger.exception``: an ERROR and a traceback, for what is the expected end of a cancelled
    job. This filter, on the backends' loggers (:func:`install_log_filter`), rewrites exactly
    those records as ``job <id> ended before its parts were merged (<part> revoked: <why>)``
    at INFO, without the traceback. Every other chord error is left as Celery logs it.
    """

    _REVOKED_PART = re.compile(r"Dependency (\S+) raised TaskRevokedError\((.*)\)$", re.S)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg != "Chord %r raised: %r" or not isinstance(args, tuple) or len(args) != 2:
            return True
        # (a ChordError from the Redis backend, a plain message from the key-value backends)
        match = self._REVOKED_PART.match(str(args[1]))
        if match is None:
            return True
        part, why = match.groups()
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.msg = "job %s ended before its parts were merged (%s revoked: %s)"
        record.args = (job_of_part(part) or "?", part, why.strip("'\""))
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


#: The loggers Celery's result backends log chord errors with.
_CHORD_LOGGERS = ("celery.backends.redis", "celery.backends.base")


def install_log_filter() -> None:
    """Add :class:`RevokedChordFilter` to the chord loggers (idempotent; done on import)."""
    for name in _CHORD_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RevokedChordFilter) for f in logger.filters):
            logger.addFilter(RevokedChordFilter())


install_log_filter()
