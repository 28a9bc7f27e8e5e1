from django.core.management.base import BaseCommand

from usage.maintenance import rebuild_totals
from usage.recording import BUCKET_SUMS, KEY_BUCKET_SUMS, RUN_BUCKET_SUMS, BucketKey, KeyBucketKey, RunBucketKey


def describe_key(key: BucketKey | RunBucketKey | KeyBucketKey) -> str:
    if isinstance(key, RunBucketKey):
        return f"run {key.start:%Y-%m-%d %H:00} {key.run_id or '-'} {key.phase_id or '-'}"
    if isinstance(key, KeyBucketKey):
        return f"sender {key.start:%Y-%m-%d %H:00} {key.sent_by or '-'}"
    when = f"{key.start:%Y-%m-%d}" if key.size == "day" else f"{key.start:%Y-%m-%d %H:00}"
    return f"{key.size} {when} {' '.join(name or '-' for name in (key.provider, key.model, key.role))}"


def describe_sums(key: BucketKey | RunBucketKey | KeyBucketKey, sums: tuple | None) -> str:
    if sums is None:
        return "no row"
    names = {RunBucketKey: RUN_BUCKET_SUMS, KeyBucketKey: KEY_BUCKET_SUMS}.get(type(key), BUCKET_SUMS)
    return ", ".join(f"{name} {value}" for name, value in zip(names, sums, strict=True))


class Command(BaseCommand):
    help = (
        "Recompute the hourly, daily, per-run and per-sender usage totals from the recorded events, print every "
        "difference (stored vs recomputed) and fix it. Totals before the prune horizon are kept as they "
        "are: their events were deleted on purpose. Safe while events are being recorded."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report the differences without fixing them")

    def handle(self, *args, dry_run, **options):
        report = rebuild_totals(dry_run=dry_run)
        if report.first_hour is None:
            self.stdout.write("No usage events recorded: nothing to rebuild.")
            return
        for difference in report.differences:
            key = difference.key
            self.stdout.write(
                f"{describe_key(key)}: stored {describe_sums(key, difference.stored)}; "
                f"recomputed {describe_sums(key, difference.recomputed)}"
            )
        since = f"from {report.first_hour:%Y-%m-%d %H:00} UTC"
        if not report.differences:
            self.stdout.write(f"Every total {since} matches its events.")
        elif dry_run:
            self.stdout.write(f"{len(report.differences)} totals {since} differ (dry run: nothing written).")
        else:
            self.stdout.write(f"{len(report.differences)} totals {since} differed and were rebuilt.")
