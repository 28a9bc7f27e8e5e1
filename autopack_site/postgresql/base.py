"""Django's PostgreSQL backend, with a health check that costs no round trip on a quiet connection.

Persistent connections must be checked before a request uses them: after a database restart or an
idle timeout, the server has closed them. Django checks with a `SELECT 1` at the start of every
request, a second round trip for a poll that needs one query. But a server that ends a connection
says so on it (a FATAL notice, then the close), so the socket turns readable; an idle connection
in good order has nothing to read. So: nothing to read, the connection is used as it is; something
to read, Django's `SELECT 1` decides.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        quiet = (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.connection.closed
            and not _has_input(self.connection)
        )
        if quiet:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()


def _has_input(connection) -> bool:
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
