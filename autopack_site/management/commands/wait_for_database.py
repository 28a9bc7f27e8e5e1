import time

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection


class Command(BaseCommand):
    help = (
        "Wait until the database accepts connections (start.sh runs it before migrate: a database started "
        "beside the app, as docker compose does, may still be starting)."
    )
    # The checks read models.yaml and the database; this command only needs the connection settings.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to keep trying (default 60)")

    def handle(self, *args, timeout, **options):
        deadline = time.monotonic() + timeout
        while True:
            try:
                connection.ensure_connection()
                return
            except OperationalError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if time.monotonic() >= deadline:
                    raise CommandError(f"The database did not answer within {timeout:g} s: {reason}") from exc
                self.stderr.write(f"Waiting for the database ({reason}); trying again in 1 s")
                time.sleep(1)
