import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from routing.config import ConfigError, get_config
from usage.maintenance import reprice_events


class Command(BaseCommand):
    help = "Recompute stored costs since a date from the current model catalog, and print what changed per model."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="date or date-time, ISO-8601 (UTC when no zone)")
        parser.add_argument("--dry-run", action="store_true", help="report the changes without writing them")

    def handle(self, *args, since, dry_run, **options):
        try:
            moment = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise CommandError(f"--since must be an ISO-8601 date, not {since!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        try:
            catalog = get_config().models
        except ConfigError as exc:
            raise CommandError(f"Cannot re-price while the models config is broken: {exc}") from None
        report = reprice_events(since=moment, catalog=catalog, dry_run=dry_run)
        verb = "would change" if dry_run else "changed"
        if not report.by_model:
            self.stdout.write(f"Examined {report.examined} events: every cost already matches the catalog.")
            return
        for model, (count, old, new) in sorted(report.by_model.items()):
            self.stdout.write(f"{model}: {count} events {verb}, ${old:.6f} → ${new:.6f} (Δ ${new - old:+.6f})")
        self.stdout.write(f"Examined {report.examined} events{' (dry run: nothing written)' if dry_run else ''}.")
