"""The one clock: every "now" in the services comes from here, so tests and the demo can set it."""

import contextlib
import datetime as dt

from django.utils import timezone

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    return _frozen if _frozen is not None else timezone.now()


@contextlib.contextmanager
def frozen_at(moment: dt.datetime):
    """Make `now()` return `moment` inside the block (tests, demo history)."""
    global _frozen
    previous, _frozen = _frozen, moment
    try:
        yield
    finally:
        _frozen = previous
