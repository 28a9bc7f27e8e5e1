"""Retention, re-pricing and rebuilding of recorded usage, keeping the buckets equal to their events."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.functions import TruncHour

from routing.config import ModelInfo
from usage.events import FIGURES
from usage.models import KeyUsageBucket, LlmUsageEvent, PrunedRequest, RunUsageBucket, UsageBucket, UsageRetention
from usage.recording import (
    BUCKET_KEY,
    BUCKET_SUMS,
    KEY_BUCKET_KEY,
    KEY_BUCKET_SUMS,
    RUN_BUCKET_KEY,
    RUN_BUCKET_SUMS,
    BucketKey,
    KeyBucketKey,
    RunBucketKey,
    day_of,
    figures_digest,
    hour_of,
)

# The longest window the dashboard shows is 30 days: keep every raw event it may need at its edges.
MIN_RETENTION = dt.timedelta(days=31)


def lock_retention(*, advance_to: dt.datetime | None = None) -> dt.datetime | None:
    """Lock the one retention row (creating it) and return the time before which events may be gone.

    Pruning and rebuilding both hold this lock for each of their transactions, so a rebuild never
    reads an hour's events while a prune is deleting some of them.
    """
    UsageRetention.objects.get_or_create(pk=1)
    retention = UsageRetention.objects.select_for_update().get(pk=1)
    if advance_to is not None and (retention.pruned_before is None or retention.pruned_before < advance_to):
        retention.pruned_before = advance_to
        retention.save(update_fields=["pruned_before"])
    return retention.pruned_before


def prune_events(*, before: dt.datetime, batch_size: int = 10_000, progress=None) -> int:
    """Delete raw events older than `before`, in batches. Buckets stay: charts and totals do not change.

    Each deleted event's request_id is kept with a digest of its figures, in the same transaction, so
    a replay after pruning is still a duplicate (or a conflict), never a second call.
    """
    deleted = 0
    while True:
        with transaction.atomic():
            lock_retention(advance_to=before)
            rows = list(
                LlmUsageEvent.objects.filter(created_at__lt=before)
                .order_by("id")
                .values_list("id", "request_id", *FIGURES)[:batch_size]
            )
            if not rows:
                return deleted
            PrunedRequest.objects.bulk_create(
                (PrunedRequest(request_id=row[1], figures_digest=figures_digest(row[2:])) for row in rows if row[1]),
                batch_size=1000,
                ignore_conflicts=True,
            )
            LlmUsageEvent.objects.filter(id__in=[row[0] for row in rows]).delete()
        deleted += len(rows)
        if progress:
            progress(deleted)


@dataclass
class RepriceReport:
    # model: [events changed, old total, new total]
    by_model: dict[str, list] = field(default_factory=lambda: defaultdict(lambda: [0, Decimal(0), Decimal(0)]))
    examined: int = 0


def new_cost(event_row: dict, catalog: dict[str, ModelInfo]) -> Decimal | None:
    info = catalog.get(event_row["model"])
    prompt, completion = event_row["prompt_tokens"], event_row["completion_tokens"]
    if info is None or prompt is None or completion is None:
        return None
    return info.cost(prompt=prompt, completion=completion, cached=event_row["cached_prompt_tokens"]).quantize(
        Decimal("1e-10")
    )


def reprice_events(
    *, since: dt.datetime, catalog: dict[str, ModelInfo], dry_run: bool, batch_size: int = 10_000
) -> RepriceReport:
    """Recompute stored costs since `since` from `catalog`; buckets get the same differences."""
    report = RepriceReport()
    last_id = 0
    while True:
        with transaction.atomic():
            rows = _reprice_batch(since, last_id, catalog, dry_run, batch_size, report)
        if not rows:
            return report
        last_id = rows[-1]["id"]


def _reprice_batch(since, last_id, catalog, dry_run, batch_size, report) -> list[dict]:
    events = LlmUsageEvent.objects.filter(created_at__gte=since, id__gt=last_id).order_by("id")
    if not dry_run:
        # Lock the batch and price what is stored now: a second reprice running at the same time waits
        # here, then reads the costs the first one wrote, and finds nothing left to change.
        events = events.select_for_update()
    rows = list(
        events.values(
            "id",
            "provider",
            "model",
            "role",
            "run_id",
            "phase_id",
            "prompt_tokens",
            "completion_tokens",
            "cached_prompt_tokens",
            "cost_usd",
            "created_at",
            "is_demo",
            "sent_by",
        )[:batch_size]
    )
    report.examined += len(rows)
    changed = []
    for row in rows:
        cost = new_cost(row, catalog)
        if cost != row["cost_usd"]:
            changed.append((row, cost))
            tally = report.by_model[row["model"]]
            tally[0] += 1
            tally[1] += row["cost_usd"] or 0
            tally[2] += cost or 0
    if changed and not dry_run:
        _apply(changed)
    return rows


def _apply(changed: list[tuple[dict, Decimal | None]]) -> None:
    bucket_deltas: dict[BucketKey, Decimal] = defaultdict(Decimal)
    run_deltas: dict[RunBucketKey, Decimal] = defaultdict(Decimal)
    key_deltas: dict[KeyBucketKey, Decimal] = defaultdict(Decimal)
    events = []
    for row, cost in changed:
        delta = (cost or 0) - (row["cost_usd"] or 0)
        hour = hour_of(row["created_at"])
        if not row["is_demo"]:
            bucket_deltas[BucketKey("hour", hour, row["provider"], row["model"], row["role"])] += delta
            bucket_deltas[BucketKey("day", day_of(hour), row["provider"], row["model"], row["role"])] += delta
            key_deltas[KeyBucketKey(hour, row["sent_by"])] += delta
        if row["run_id"]:
            run_deltas[RunBucketKey(hour, row["run_id"], row["phase_id"])] += delta
        events.append(LlmUsageEvent(id=row["id"], cost_usd=cost))
    LlmUsageEvent.objects.bulk_update(events, ["cost_usd"], batch_size=1000)
    # In key order, the order recording locks bucket rows in, so the two cannot deadlock.
    for key, delta in sorted(bucket_deltas.items()):
        UsageBucket.objects.filter(**key._asdict()).update(cost_usd=F("cost_usd") + delta)
    for key, delta in sorted(run_deltas.items()):
        RunUsageBucket.objects.filter(**key._asdict()).update(cost_usd=F("cost_usd") + delta)
    for key, delta in sorted(key_deltas.items()):
        KeyUsageBucket.objects.filter(**key._asdict()).update(cost_usd=F("cost_usd") + delta)


@dataclass
class Difference:
    key: BucketKey | RunBucketKey | KeyBucketKey
    # The sums in BUCKET_SUMS, RUN_BUCKET_SUMS or KEY_BUCKET_SUMS order; None when there is no such row.
    stored: tuple | None
    recomputed: tuple | None


@dataclass
class RebuildReport:
    # The first hour rebuilt; earlier buckets keep history whose events were pruned. None: no events.
    first_hour: dt.datetime | None = None
    differences: list[Difference] = field(default_factory=list)


def rebuild_totals(*, dry_run: bool) -> RebuildReport:
    """Recompute the hourly, daily, run and key buckets from the events, and report (and fix) every difference.

    Only ranges that still hold all their events are rebuilt: hours starting at or after the retention
    horizon that prune_usage records (migration 0003 infers it for pruning done before), and days
    starting at or after it. Before it, a bucket is the only record of events deleted on purpose, so it
    is kept as it is; the hour and the day the horizon falls in are partly pruned, so they are kept too.
    """
    report = RebuildReport()
    bounds = LlmUsageEvent.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    if bounds["first"] is None:
        return report
    latest_buckets = (
        model.objects.aggregate(m=Max("start"))["m"] for model in (UsageBucket, RunUsageBucket, KeyUsageBucket)
    )
    last = max(bounds["last"], *filter(None, latest_buckets))
    day = day_of(bounds["first"])
    while day <= last:
        # One transaction per day: short enough not to hold recording up, and each one consistent.
        with transaction.atomic():
            # Read under the lock each time: a prune that ran meanwhile has moved the horizon.
            horizon = lock_retention()
            first_hour = _ceil_hour(horizon) if horizon else hour_of(bounds["first"])
            report.first_hour = first_hour
            report.differences.extend(_rebuild_day(day, first_hour, dry_run=dry_run))
        day += DAY
    return report


DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    hour = hour_of(moment)
    return hour if hour == moment else hour + HOUR


def _rebuild_day(day: dt.datetime, first_hour: dt.datetime, *, dry_run: bool) -> list[Difference]:
    lo, hi = max(day, first_hour), day + DAY
    if lo >= hi:
        return []
    if connection.vendor == "postgresql":
        # Recording and re-pricing add to these rows; while we read the events and set the sums, they
        # wait, then add what they bring to the rebuilt rows. (SQLite runs one writer at a time anyway.)
        with connection.cursor() as cursor:
            cursor.execute(
                f"LOCK TABLE {UsageBucket._meta.db_table}, {RunUsageBucket._meta.db_table}, "
                f"{KeyUsageBucket._meta.db_table} IN SHARE ROW EXCLUSIVE MODE"
            )
    events = LlmUsageEvent.objects.filter(created_at__gte=lo, created_at__lt=hi).annotate(
        hour=TruncHour("created_at", tzinfo=dt.UTC)
    )
    sums = {
        "prompt_tokens": Sum("prompt_tokens", default=0),
        "completion_tokens": Sum("completion_tokens", default=0),
        "total_tokens": Sum("total_tokens", default=0),
        "cost_usd": Sum("cost_usd", default=Decimal(0)),
        "calls": Count("id"),
    }
    buckets: dict[BucketKey, tuple] = {}
    whole_day = lo == day
    # Demo events count for their demo runs only, never in the provider buckets.
    for row in events.filter(is_demo=False).values("hour", "provider", "model", "role").annotate(**sums).order_by():
        values = tuple(row[name] for name in BUCKET_SUMS)
        buckets[BucketKey("hour", row["hour"], row["provider"], row["model"], row["role"])] = values
        if whole_day:
            key = BucketKey("day", day, row["provider"], row["model"], row["role"])
            buckets[key] = tuple(a + b for a, b in zip(buckets.get(key, (0, 0, 0, Decimal(0), 0)), values, strict=True))
    stored_buckets = UsageBucket.objects.filter(size=UsageBucket.HOUR, start__gte=lo, start__lt=hi)
    if whole_day:
        stored_buckets = stored_buckets | UsageBucket.objects.filter(size=UsageBucket.DAY, start=day)
    run_sums = {name: sums[name] for name in RUN_BUCKET_SUMS}
    runs = {
        RunBucketKey(row["hour"], row["run_id"], row["phase_id"]): tuple(row[name] for name in RUN_BUCKET_SUMS)
        for row in events.exclude(run_id="").values("hour", "run_id", "phase_id").annotate(**run_sums).order_by()
    }
    stored_runs = RunUsageBucket.objects.filter(start__gte=lo, start__lt=hi)
    key_sums = {name: sums[name] for name in KEY_BUCKET_SUMS}
    keys = {
        KeyBucketKey(row["hour"], row["sent_by"]): tuple(row[name] for name in KEY_BUCKET_SUMS)
        for row in events.filter(is_demo=False).values("hour", "sent_by").annotate(**key_sums).order_by()
    }
    stored_keys = KeyUsageBucket.objects.filter(start__gte=lo, start__lt=hi)
    differences = (
        _compare(
            {
                BucketKey(*row[: len(BUCKET_KEY)]): row[len(BUCKET_KEY) :]
                for row in stored_buckets.values_list(*BUCKET_KEY, *BUCKET_SUMS)
            },
            buckets,
        )
        + _compare(
            {
                RunBucketKey(*row[: len(RUN_BUCKET_KEY)]): row[len(RUN_BUCKET_KEY) :]
                for row in stored_runs.values_list(*RUN_BUCKET_KEY, *RUN_BUCKET_SUMS)
            },
            runs,
        )
        + _compare(
            {
                KeyBucketKey(*row[: len(KEY_BUCKET_KEY)]): row[len(KEY_BUCKET_KEY) :]
                for row in stored_keys.values_list(*KEY_BUCKET_KEY, *KEY_BUCKET_SUMS)
            },
            keys,
        )
    )
    if not dry_run:
        for difference in differences:
            _fix(difference)
    return differences


def _compare(stored: dict, recomputed: dict) -> list[Difference]:
    """Keys are all of one kind (BucketKey, RunBucketKey or KeyBucketKey); values are sums in that kind's order."""
    # SQLite keeps decimals as floats: sums there may differ in the last places without being wrong.
    tolerance = Decimal(0) if connection.vendor == "postgresql" else Decimal("1e-8")
    differences = []
    for key in sorted(stored.keys() | recomputed.keys()):
        old, new = stored.get(key), recomputed.get(key)
        if (
            old is None
            or new is None
            or any(abs(Decimal(a) - Decimal(b)) > tolerance for a, b in zip(old, new, strict=True))
        ):
            differences.append(Difference(key, old, new))
    return differences


def _fix(difference: Difference) -> None:
    if isinstance(difference.key, RunBucketKey):
        model, fields = RunUsageBucket, RUN_BUCKET_SUMS
    elif isinstance(difference.key, KeyBucketKey):
        model, fields = KeyUsageBucket, KEY_BUCKET_SUMS
    else:
        model, fields = UsageBucket, BUCKET_SUMS
    where = difference.key._asdict()
    if difference.recomputed is None:
        model.objects.filter(**where).delete()
    else:
        model.objects.update_or_create(**where, defaults=dict(zip(fields, difference.recomputed, strict=True)))
