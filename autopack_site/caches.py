"""A process's memory cache that keeps nothing for long, whatever its callers ask: for sessions."""

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache


class BriefLocMemCache(LocMemCache):
    """Django's memory cache with TIMEOUT as the longest any entry is kept.

    Django's cached_db sessions keep a session in the cache as long as the session lives (two weeks),
    and each process has its own memory: a logout made on one worker or server would go unseen by the
    others until then. Capped at a few seconds, a logout reaches every process within them, and a page's
    polls still read the session from the database about once in that time.
    """

    def get_backend_timeout(self, timeout=DEFAULT_TIMEOUT):
        if timeout is DEFAULT_TIMEOUT or timeout is None or timeout > self.default_timeout:
            timeout = self.default_timeout
        return super().get_backend_timeout(timeout)
