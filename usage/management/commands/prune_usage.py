import datetime as dt
import re

from django.core.management.base import BaseCommand, CommandError

from autopack_site import clock
from usage.maintenance import MIN_RETENTION, prune_events


def parse_age(text: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)([dhw])", text.strip())
    if not match:
        raise CommandError(f"--older-than takes an age like 90d, 12w or 2200h, not {text!r}")
    number, unit = int(match.group(1)), match.group(2)
    return {"d": dt.timedelta(days=number), "h": dt.timedelta(hours=number), "w": dt.timedelta(weeks=number)}[unit]


class Command(BaseCommand):
    help = (
        "Delete raw usage events older than an age (e.g. --older-than 90d), in batches. Hourly and daily "
        "totals are kept, so the dashboard shows the same figures for every window."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="age such as 90d, 12w or 2200h (at least 31d)")

    def handle(self, *args, older_than, **options):
        age = parse_age(older_than)
        if age < MIN_RETENTION:
            raise CommandError(
                f"Keep at least {MIN_RETENTION.days} days: the 30-day window reads raw events at its edges."
            )
        before = clock.now() - age
        deleted = prune_events(before=before, progress=lambda n: self.stderr.write(f"… {n} deleted"))
        self.stdout.write(f"Deleted {deleted} usage events recorded before {before:%Y-%m-%d %H:%M} UTC.")
