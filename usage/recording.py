"""The one recording path for LLM usage: Python callers, `record_usage` and `POST /api/usage`.

A batch is written in one transaction: the new events, their hourly and daily buckets, their runs'
token totals. Replays are recognised by request_id: the same figures are a duplicate (skipped), other
figures a conflict (rejected), never an overwrite.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction

from autopack_site import clock
from autopack_site.errors import Conflict, InvalidInput
from routing.config import pricing_catalog
from runs.services import add_usage_tokens
from usage.events import EventInvalid, UsageEvent, parse_event
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket

EVENT_COLUMNS = (
    "provider",
    "model",
    "role",
    "run_id",
    "phase_id",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_prompt_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "status",
    "request_id",
    "created_at",
)


@dataclass
class BatchResult:
    imported: int = 0
    duplicates: int = 0
    # (position in the batch as the caller numbers it, reason)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def record_usage(**fields) -> BatchResult:
    """Record one event given as keyword fields (the Python API). Raises InvalidInput or Conflict."""
    result = record_usage_events([fields], atomic_batch=True)
    return result


def record_usage_events(items: list[dict], *, atomic_batch: bool, first_number: int = 0) -> BatchResult:
    """Validate and record events. With `atomic_batch`, any bad event rejects the whole batch."""
    catalog, now = pricing_catalog(), clock.now()
    events: list[tuple[int, UsageEvent]] = []
    result = BatchResult()
    invalid: dict[str, str] = {}
    for offset, item in enumerate(items):
        number = first_number + offset
        try:
            events.append((number, parse_event(item, catalog=catalog, now=now)))
        except EventInvalid as exc:
            result.rejected.append((number, str(exc)))
            for key, reason in exc.details.items():
                invalid[f"events[{offset}].{key}" if len(items) > 1 else key] = reason
    if invalid and atomic_batch:
        raise InvalidInput("Invalid usage event" if len(items) == 1 else "Invalid usage events", invalid)
    return write_events(events, result, atomic_batch=atomic_batch)


def write_events(events: list[tuple[int, UsageEvent]], result: BatchResult, *, atomic_batch: bool) -> BatchResult:
    """Insert checked events with their rollups and run totals, in one transaction."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _write(events, result, atomic_batch=atomic_batch)
        except IntegrityError:
            # A concurrent writer inserted one of our request_ids first: classify again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _write(events, result: BatchResult, *, atomic_batch: bool) -> BatchResult:
    fresh = BatchResult(rejected=list(result.rejected))
    new: list[UsageEvent] = []
    seen: dict[str, tuple] = {}
    ids = [e.request_id for _, e in events if e.request_id]
    stored = _stored_figures(ids) if ids else {}
    conflicts = {}
    for number, event in events:
        rid = event.request_id
        if rid is None:
            new.append(event)
            continue
        known = stored.get(rid, seen.get(rid))
        if known is None:
            seen[rid] = event.figures()
            new.append(event)
        elif known == event.figures():
            fresh.duplicates += 1
        else:
            reason = f"request_id {rid!r} was recorded with other figures"
            fresh.rejected.append((number, reason))
            conflicts[f"request_id[{number}]" if len(events) > 1 else "request_id"] = reason
    if conflicts and atomic_batch:
        raise Conflict("Usage conflicts with what is recorded", conflicts)
    if new:
        _insert(new)
        _add_to_buckets(new)
        _add_to_runs(new)
    fresh.imported = len(new)
    fresh.rejected.sort()
    return fresh


def _stored_figures(request_ids: list[str]) -> dict[str, tuple]:
    found = {}
    for start in range(0, len(request_ids), 5000):
        chunk = request_ids[start : start + 5000]
        for row in LlmUsageEvent.objects.filter(request_id__in=chunk).values_list(
            "request_id",
            "provider",
            "model",
            "role",
            "run_id",
            "phase_id",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cached_prompt_tokens",
            "reasoning_tokens",
            "status",
        ):
            found[row[0]] = tuple(row[1:])
    return found


def _insert(events: list[UsageEvent]) -> None:
    if connection.vendor == "postgresql":
        # COPY is several times faster than INSERT for large files (see bench/record_usage_speed.py).
        table = LlmUsageEvent._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy,
        ):
            for e in events:
                copy.write_row(tuple(getattr(e, c) for c in EVENT_COLUMNS))
        return
    LlmUsageEvent.objects.bulk_create(
        (LlmUsageEvent(**{c: getattr(e, c) for c in EVENT_COLUMNS}) for e in events), batch_size=500
    )


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _add_to_buckets(events: list[UsageEvent]) -> None:
    sums: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, Decimal(0), 0])
    run_sums: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), 0])
    for e in events:
        hour = hour_of(e.created_at)
        for key in (
            ("hour", hour, e.provider, e.model, e.role),
            ("day", day_of(hour), e.provider, e.model, e.role),
        ):
            row = sums[key]
            row[0] += e.prompt_tokens or 0
            row[1] += e.completion_tokens or 0
            row[2] += e.total_tokens
            row[3] += e.cost_usd or 0
            row[4] += 1
        if e.run_id:
            row = run_sums[(hour, e.run_id, e.phase_id)]
            row[0] += e.total_tokens
            row[1] += e.cost_usd or 0
            row[2] += 1
    adapt = connection.ops.adapt_datetimefield_value
    adapt_decimal = connection.ops.adapt_decimalfield_value
    bucket_table, run_table = UsageBucket._meta.db_table, RunUsageBucket._meta.db_table
    # One statement on both databases: insert the bucket, or add to it when it exists.
    # Table names come from the models, never from input.
    with connection.cursor() as cursor:
        cursor.executemany(
            f"""INSERT INTO {bucket_table}
                (size, start, provider, model, role, prompt_tokens, completion_tokens, total_tokens, cost_usd, calls)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (size, start, provider, model, role) DO UPDATE SET
                  prompt_tokens = {bucket_table}.prompt_tokens + excluded.prompt_tokens,
                  completion_tokens = {bucket_table}.completion_tokens + excluded.completion_tokens,
                  total_tokens = {bucket_table}.total_tokens + excluded.total_tokens,
                  cost_usd = {bucket_table}.cost_usd + excluded.cost_usd,
                  calls = {bucket_table}.calls + excluded.calls""",  # noqa: S608
            [
                (size, adapt(start), p, m, r, a, b, c, adapt_decimal(d, 24, 10), n)
                for (size, start, p, m, r), (a, b, c, d, n) in sorted(sums.items())
            ],
        )
        if run_sums:
            cursor.executemany(
                f"""INSERT INTO {run_table} (start, run_id, phase_id, total_tokens, cost_usd, calls)
                    VALUES (%s, %s, %s, %s, %s, %s)
                    ON CONFLICT (start, run_id, phase_id) DO UPDATE SET
                      total_tokens = {run_table}.total_tokens + excluded.total_tokens,
                      cost_usd = {run_table}.cost_usd + excluded.cost_usd,
                      calls = {run_table}.calls + excluded.calls""",  # noqa: S608
                [
                    (adapt(start), run_id, phase_id, t, adapt_decimal(c, 24, 10), n)
                    for (start, run_id, phase_id), (t, c, n) in sorted(run_sums.items())
                ],
            )


def _add_to_runs(events: list[UsageEvent]) -> None:
    by_run: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        if e.run_id:
            by_run[e.run_id][e.phase_id] += e.total_tokens
    # Sorted, so concurrent batches lock runs in the same order and cannot deadlock.
    for run_id in sorted(by_run):
        add_usage_tokens(run_id=run_id, tokens_by_phase=dict(by_run[run_id]))
