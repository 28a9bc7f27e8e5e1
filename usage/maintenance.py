"""Retention and re-pricing of recorded usage, keeping the buckets equal to their events."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from routing.config import ModelInfo
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket
from usage.recording import day_of, hour_of

# The longest window the dashboard shows is 30 days: keep every raw event it may need at its edges.
MIN_RETENTION = dt.timedelta(days=31)


def prune_events(*, before: dt.datetime, batch_size: int = 10_000, progress=None) -> int:
    """Delete raw events older than `before`, in batches. Buckets stay: charts and totals do not change."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                LlmUsageEvent.objects.filter(created_at__lt=before)
                .order_by("id")
                .values_list("id", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            LlmUsageEvent.objects.filter(id__in=ids).delete()
        deleted += len(ids)
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
        rows = list(
            LlmUsageEvent.objects.filter(created_at__gte=since, id__gt=last_id)
            .order_by("id")
            .values(
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
            )[:batch_size]
        )
        if not rows:
            return report
        last_id = rows[-1]["id"]
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


@transaction.atomic
def _apply(changed: list[tuple[dict, Decimal | None]]) -> None:
    bucket_deltas: dict[tuple, Decimal] = defaultdict(Decimal)
    run_deltas: dict[tuple, Decimal] = defaultdict(Decimal)
    events = []
    for row, cost in changed:
        delta = (cost or 0) - (row["cost_usd"] or 0)
        hour = hour_of(row["created_at"])
        bucket_deltas[("hour", hour, row["provider"], row["model"], row["role"])] += delta
        bucket_deltas[("day", day_of(hour), row["provider"], row["model"], row["role"])] += delta
        if row["run_id"]:
            run_deltas[(hour, row["run_id"], row["phase_id"])] += delta
        events.append(LlmUsageEvent(id=row["id"], cost_usd=cost))
    LlmUsageEvent.objects.bulk_update(events, ["cost_usd"], batch_size=1000)
    for (size, start, provider, model, role), delta in bucket_deltas.items():
        UsageBucket.objects.filter(size=size, start=start, provider=provider, model=model, role=role).update(
            cost_usd=F("cost_usd") + delta
        )
    for (start, run_id, phase_id), delta in run_deltas.items():
        RunUsageBucket.objects.filter(start=start, run_id=run_id, phase_id=phase_id).update(
            cost_usd=F("cost_usd") + delta
        )
