"""Logging filters."""

import logging

from django.db import OperationalError


class DatabaseAwayFilter(logging.Filter):
    """A request that met the database away (answered 503) is logged in one line, without its traceback.

    While the database restarts every request fails the same way; Django would log each one's whole
    traceback, hundreds of lines a second that hide the one that matters.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OperationalError) and getattr(record, "status_code", None) == 503:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            record.msg = f"{record.msg} (database unavailable: {first_line})"
            record.exc_info = None
            record.exc_text = None
        return True
