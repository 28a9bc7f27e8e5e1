"""The one recording path for LLM usage: Python callers, `record_usage` and `POST /api/usage`.

A batch is written in one transaction: the new events, their hourly and daily buckets, their runs'
token totals. Replays are recognised by request_id: the same figures are a duplicate (skipped), other
figures a conflict (rejected), never an overwrite.
"""

import datetime as dt
import functools
import hashlib
import json
import operator
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import psycopg
from django.db import IntegrityError, OperationalError, connection, transaction
from psycopg.types.json import Jsonb

from autopack_site import clock, metrics
from autopack_site.errors import Conflict, DomainError, InvalidInput
from autopack_site.strict_json import parse_json
from routing.config import pricing_catalog
from runs.services import add_usage_tokens
from usage.events import FIGURES, REPORTED_FIELDS, EventInvalid, UsageEvent, parse_event, parse_line
from usage.models import KeyUsageBucket, LlmUsageEvent, PrunedRequest, RunUsageBucket, UsageBucket

# What is stored per event: what was reported, plus the price, the time, whether it is demo data and
# who sent it, and the router's decision (last: the COPY path wraps it).
EVENT_COLUMNS = (*REPORTED_FIELDS, "cost_usd", "created_at", "is_demo", "sent_by", "decision")


HOUR = dt.timedelta(hours=1)

# Below this, plain INSERTs cost no more than setting up a COPY.
COPY_THRESHOLD = 1000
# Up to this many ids, the planner picks the unique index by itself, with or without statistics.
FEW_IDS = 100
# Up to this many bucket rows are upserted in one plain statement; more go through a scratch table.
FEW_BUCKETS = 100

# A file line without request_id gets one derived from its content, under a prefix callers may not use.
DERIVED_PREFIX = "derived:"
RESERVED_ID = f"may not start with {DERIVED_PREFIX!r} (reserved for ids derived from file lines)"
NO_KEY = "needs request_id or created_at: without either, importing the file again would count it twice"

# How often one batch is tried when concurrent writers get in its way (unique clash, deadlock).
ATTEMPTS = 5
# PostgreSQL's serialization_failure and deadlock_detected: the transaction may simply be run again.
RETRYABLE_PGCODES = ("40001", "40P01")


@dataclass
class BatchResult:
    imported: int = 0
    duplicates: int = 0
    # (position in the batch as the caller numbers it, reason)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def record_usage(**fields) -> BatchResult:
    """Record one event given as keyword fields (the Python API). Raises InvalidInput or Conflict."""
    return record_usage_events([fields], atomic_batch=True)


def record_usage_events(
    items: list[dict], *, atomic_batch: bool, demo: bool = False, sent_by: str = "", new_ids: bool = False
) -> BatchResult:
    """Validate and record events. With `atomic_batch`, any bad event rejects the whole batch.

    Rejections are reported by the item's position in `items`. `demo` marks the events as demo data
    (the demo loader's calls): kept apart from every real total. `sent_by` names the key or person
    that sent the whole batch. `new_ids` says the request ids were made just now by the caller (the
    call path's random ones): none can be stored, so they are not looked up first.
    """
    events, result = check_events(items, atomic_batch=atomic_batch)
    for _, event in events:
        event.is_demo = demo
        event.sent_by = sent_by
    return write_events(events, result, atomic_batch=atomic_batch, new_ids=new_ids)


def check_events(items: list[dict], *, atomic_batch: bool) -> tuple[list[tuple[int, UsageEvent]], BatchResult]:
    """Validate and price events without touching the database."""
    catalog, now = pricing_catalog(), clock.now()
    events: list[tuple[int, UsageEvent]] = []
    result = BatchResult()
    invalid: dict[str, str] = {}
    for position, item in enumerate(items):
        try:
            event = parse_event(item, catalog=catalog, now=now)
            if event.request_id and event.request_id.startswith(DERIVED_PREFIX):
                raise EventInvalid({"request_id": RESERVED_ID})
            events.append((position, event))
        except EventInvalid as exc:
            result.rejected.append((position, str(exc)))
            for key, reason in exc.details.items():
                invalid[f"events[{position}].{key}" if len(items) > 1 else key] = reason
    if invalid and atomic_batch:
        raise InvalidInput("Invalid usage event" if len(items) == 1 else "Invalid usage events", invalid)
    return events, result


def write_events(
    events: list[tuple[int, UsageEvent]], result: BatchResult, *, atomic_batch: bool, new_ids: bool = False
) -> BatchResult:
    """Insert checked events with their rollups and run totals, in one transaction."""
    # COPY only in a transaction of our own: a COPY cut short by a unique clash can leave results on
    # the connection, and only then may we close it and start clean.
    outer = connection.in_atomic_block
    use_copy = connection.vendor == "postgresql" and not outer and len(events) >= COPY_THRESHOLD
    at_once = new_ids and not outer and connection.vendor == "postgresql" and not result.rejected
    if at_once and len(events) <= FEW_BUCKETS and not any(e.run_id for _, e in events):
        try:
            return _write_at_once([e for _, e in events])
        except IntegrityError:
            # One of the ids was stored after all: the full path below looks them up and says which.
            new_ids = False
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # Our own transaction, or a savepoint in the caller's: either way a failed attempt is
            # rolled back whole, with the locks it took, before the next one starts.
            with transaction.atomic():
                written = _write(events, result, atomic_batch=atomic_batch, use_copy=use_copy, new_ids=new_ids)
                if written.imported:
                    # Counted once stored: a rolled-back attempt, or a caller's rolled-back transaction, counts nothing.
                    transaction.on_commit(functools.partial(metrics.count_usage_events, written.imported))
                return written
        except IntegrityError:
            # A concurrent writer inserted one of our request_ids first: classify again, looking them up.
            if attempt == ATTEMPTS:
                raise
            new_ids = False
        except OperationalError as exc:
            # A deadlock or serialization failure says nothing about the events: run the batch again.
            if attempt == ATTEMPTS or getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE_PGCODES:
                raise
            time.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 - jitter, not secrecy
        if use_copy:
            connection.close()
    raise AssertionError("unreachable")


def _write_at_once(events: list[UsageEvent]) -> BatchResult:
    """PostgreSQL: new events that touch no run, with their buckets, in one statement and one round trip.

    An LLM call's own event (its request id made just now, nothing stored under it) is the usual case.
    One statement is atomic by itself, in autocommit: no BEGIN and COMMIT of their own. A clash on
    request_id fails it whole, as IntegrityError.
    """
    table = LlmUsageEvent._meta.db_table
    one_row = f"({', '.join(['%s'] * len(EVENT_COLUMNS))})"
    insert = (
        f"INSERT INTO {table} ({', '.join(EVENT_COLUMNS)}) VALUES {', '.join([one_row] * len(events))}",  # noqa: S608
        [value for row in _event_rows(events) for value in row],
    )
    tables = _bucket_tables(events)
    sql, params = _upsert_small(tables, first=insert) if tables else insert
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    metrics.count_usage_events(len(events))
    return BatchResult(imported=len(events))


def _write(events, result: BatchResult, *, atomic_batch: bool, use_copy: bool, new_ids: bool) -> BatchResult:
    fresh = BatchResult(rejected=list(result.rejected))
    new: list[UsageEvent] = []
    # The batch's own events by request_id: a repeat within the batch is compared with the first.
    seen: dict[str, UsageEvent] = {}
    ids = [e.request_id for _, e in events if e.request_id]
    # New ids cannot be stored; should one clash all the same, the insert below says so.
    stored = _stored_figures(ids) if ids and not new_ids else {}
    conflicts = {}

    def classify(number: int, event: UsageEvent, known) -> None:
        if known == (figures_digest(event.figures()) if isinstance(known, str) else event.figures()):
            fresh.duplicates += 1
            return
        reason = f"request_id {event.request_id!r} was recorded with other figures"
        fresh.rejected.append((number, reason))
        conflicts[f"request_id[{number}]" if len(events) > 1 else "request_id"] = reason

    number_of: dict[str, int] = {}
    for number, event in events:
        rid = event.request_id
        if rid is None:
            new.append(event)
            continue
        known = stored.get(rid)
        if known is None and rid in seen:
            known = seen[rid].figures()
        if known is None:
            seen[rid] = event
            number_of[rid] = number
            new.append(event)
        else:
            classify(number, event, known)
    if conflicts and atomic_batch:
        raise Conflict("Usage conflicts with what is recorded", conflicts)
    if new:
        # One global order: two batches inserting the same new request_ids wait on each other's
        # unique-index entries in the same sequence, so they cannot deadlock.
        new.sort(key=_by_request_id)
        late = _insert(new, use_copy=use_copy)
        if late:
            # A concurrent batch committed these request_ids after we looked: classify them now.
            stored = _stored_figures([e.request_id for e in late])
            for event in late:
                classify(number_of[event.request_id], event, stored[event.request_id])
            if conflicts and atomic_batch:
                raise Conflict("Usage conflicts with what is recorded", conflicts)
            skipped = {e.request_id for e in late}
            new = [e for e in new if e.request_id not in skipped]
        _add_to_buckets(new)
        _add_to_runs(new)
    fresh.imported = len(new)
    fresh.rejected.sort()
    return fresh


def _by_request_id(event: UsageEvent) -> str:
    return event.request_id or ""


def figures_digest(figures: tuple) -> str:
    """A fixed-size fingerprint of an event's figures, kept for its request_id once the event is pruned."""
    return hashlib.sha256(json.dumps(figures, separators=(",", ":")).encode()).hexdigest()


def _stored_figures(request_ids: list[str]) -> dict[str, tuple | str]:
    """Figures recorded under these request_ids: a tuple for a stored event, a digest for a pruned one.

    Pruned ids are read in the same statement as the events: prune_usage moves an id from one table
    to the other in one transaction, so one snapshot always sees it in exactly one of them.
    """
    events, pruned = LlmUsageEvent._meta.db_table, PrunedRequest._meta.db_table
    blanks = ", ".join(["NULL"] * (len(FIGURES) - 1))
    union = (
        f"SELECT request_id, 0, {', '.join(FIGURES)} FROM {events} WHERE request_id {{match}} "  # noqa: S608
        f"UNION ALL SELECT request_id, 1, figures_digest, {blanks} FROM {pruned} WHERE request_id {{match}}"
    )
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of IN placeholders, bound by the server and sent in
        # binary (Django's cursors would quote every id into the statement's text). Probed through the
        # unique index whatever the planner guesses: a table that grew fast since its last ANALYZE (a
        # first large import) makes it guess that thousands of ids match every row, and scan them all.
        connection.ensure_connection()
        many = len(request_ids) > FEW_IDS
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            if many:
                cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(union.format(match="= ANY(%b)"), [request_ids, request_ids], prepare=False)
            rows = cursor.fetchall()
            if many:
                cursor.execute("SET LOCAL enable_seqscan = on")
    else:
        rows = []
        with connection.cursor() as cursor:
            for start in range(0, len(request_ids), 400):
                chunk = request_ids[start : start + 400]
                cursor.execute(union.format(match=f"IN ({', '.join(['%s'] * len(chunk))})"), chunk + chunk)
                rows.extend(cursor.fetchall())
    return {rid: row[0] if is_pruned else tuple(row) for rid, is_pruned, *row in rows}


_row_of = operator.attrgetter(*EVENT_COLUMNS)


def _event_rows(events: list[UsageEvent]):
    for e in events:
        row = _row_of(e)
        yield (*row[:-1], Jsonb(e.decision)) if e.decision is not None else row


def _insert(events: list[UsageEvent], *, use_copy: bool) -> list[UsageEvent]:
    """Insert the events; return those a concurrent writer recorded first (PostgreSQL INSERTs only)."""
    table = LlmUsageEvent._meta.db_table
    if use_copy:
        # COPY is several times faster than INSERT for large files (see bench/record_usage_speed.py).
        # Raw COPY errors are psycopg's; wrapped, a unique clash is Django's IntegrityError like any other.
        # Binary: half the client's work of the text format, which spells out every number and time.
        with (
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(_column_types(LlmUsageEvent, EVENT_COLUMNS))
            for row in _event_rows(events):
                copy.write_row(row)
        return []
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time: no one can insert our request_ids after we looked.
        LlmUsageEvent.objects.bulk_create(
            (LlmUsageEvent(**{c: getattr(e, c) for c in EVENT_COLUMNS}) for e in events), batch_size=500
        )
        return []
    # A request_id inserted meanwhile by a concurrent batch is skipped (after waiting for it to commit)
    # rather than failing the whole transaction, so overlapping batches need no retries.
    late = []
    one_row = f"({', '.join(['%s'] * len(EVENT_COLUMNS))})"
    with connection.cursor() as cursor:
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(EVENT_COLUMNS)}) VALUES {', '.join([one_row] * len(chunk))} "  # noqa: S608
                "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                [value for row in _event_rows(chunk) for value in row],
            )
            inserted = {row[0] for row in cursor.fetchall()}
            late.extend(e for e in chunk if e.request_id is not None and e.request_id not in inserted)
    return late


def _column_types(model, columns) -> list[str]:
    """The database types of these columns, as a binary COPY must be told them."""
    return [model._meta.get_field(c).db_type(connection).split("(")[0] for c in columns]


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _add_to_buckets(events: list[UsageEvent]) -> None:
    tables = _bucket_tables(events)
    if not tables:
        return
    if connection.vendor == "postgresql" and all(len(rows) <= FEW_BUCKETS for *_, rows in tables):
        # A call or a small batch (the usual case): every table's upsert in one statement, one round trip.
        sql, params = _upsert_small(tables)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    for model, key, sums, rows in tables:
        _upsert_adding(model, key, sums, rows)


def _bucket_tables(events: list[UsageEvent]) -> list[tuple]:
    """(model, key columns, sum columns, rows) of each bucket table the events add to."""
    # Events are grouped first (one dict step each; a batch's events mostly share their hour), then
    # each group's figures are summed at once: a large import's batches hold thousands of events and
    # a few dozen groups.
    groups: dict[tuple, list[UsageEvent]] = defaultdict(list)
    hour = end = None
    for e in events:
        moment = e.created_at
        if hour is None or not hour <= moment < end:
            hour = hour_of(moment)
            end = hour + HOUR
        groups[(hour, e.provider, e.model, e.role, e.run_id, e.phase_id, e.is_demo, e.sent_by)].append(e)
    hours: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, Decimal(0), 0])
    run_sums: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), 0])
    key_sums: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), 0])
    for (hour, provider, model, role, run_id, phase_id, is_demo, sent_by), group in groups.items():
        total = sum([e.total_tokens for e in group])
        cost = sum([e.cost_usd for e in group if e.cost_usd is not None], Decimal(0))
        # Demo calls count for their demo run only: never in a provider's totals, so never in a quota.
        if not is_demo:
            row = hours[(hour, provider, model, role)]
            row[0] += sum([e.prompt_tokens or 0 for e in group])
            row[1] += sum([e.completion_tokens or 0 for e in group])
            row[2] += total
            row[3] += cost
            row[4] += len(group)
            row = key_sums[(hour, sent_by)]
            row[0] += total
            row[1] += cost
            row[2] += len(group)
        if run_id:
            row = run_sums[(hour, run_id, phase_id)]
            row[0] += total
            row[1] += cost
            row[2] += len(group)
    # Days are sums of their hours.
    sums: dict[BucketKey, list] = {}
    for (hour, provider, model, role), values in hours.items():
        sums[BucketKey("hour", hour, provider, model, role)] = values
        day = sums.setdefault(BucketKey("day", day_of(hour), provider, model, role), [0, 0, 0, Decimal(0), 0])
        for i, value in enumerate(values):
            day[i] += value
    bucket_rows = [BucketRow(*key, *values) for key, values in sums.items()]
    run_rows = [RunBucketRow(*key, *values) for key, values in run_sums.items()]
    key_rows = [KeyBucketRow(*key, *values) for key, values in key_sums.items()]
    tables = (
        (UsageBucket, BUCKET_KEY, BUCKET_SUMS, bucket_rows),
        (RunUsageBucket, RUN_BUCKET_KEY, RUN_BUCKET_SUMS, run_rows),
        (KeyUsageBucket, KEY_BUCKET_KEY, KEY_BUCKET_SUMS, key_rows),
    )
    return [table for table in tables if table[3]]


class BucketKey(NamedTuple):
    """A UsageBucket's unique key: one hour's or one day's calls of one provider, model and role."""

    size: str  # "hour" or "day"
    start: dt.datetime
    provider: str
    model: str
    role: str


class BucketRow(NamedTuple):
    """A UsageBucket's key and the sums to add to it."""

    size: str
    start: dt.datetime
    provider: str
    model: str
    role: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Decimal
    calls: int


class RunBucketKey(NamedTuple):
    """A RunUsageBucket's unique key: one hour's calls of one phase of one run."""

    start: dt.datetime
    run_id: str
    phase_id: str


class RunBucketRow(NamedTuple):
    """A RunUsageBucket's key and the sums to add to it."""

    start: dt.datetime
    run_id: str
    phase_id: str
    total_tokens: int
    cost_usd: Decimal
    calls: int


class KeyBucketKey(NamedTuple):
    """A KeyUsageBucket's unique key: one hour's calls sent with one key (or by one person)."""

    start: dt.datetime
    sent_by: str


class KeyBucketRow(NamedTuple):
    """A KeyUsageBucket's key and the sums to add to it."""

    start: dt.datetime
    sent_by: str
    total_tokens: int
    cost_usd: Decimal
    calls: int


# Column names, in the order of the rows above.
BUCKET_KEY = BucketKey._fields
BUCKET_SUMS = BucketRow._fields[len(BUCKET_KEY) :]
RUN_BUCKET_KEY = RunBucketKey._fields
RUN_BUCKET_SUMS = RunBucketRow._fields[len(RUN_BUCKET_KEY) :]
KEY_BUCKET_KEY = KeyBucketKey._fields
KEY_BUCKET_SUMS = KeyBucketRow._fields[len(KEY_BUCKET_KEY) :]


def _upsert_parts(model, key: tuple[str, ...], sums: tuple[str, ...]) -> tuple[str, tuple[str, ...], str]:
    """A bucket table's name, columns and the ON CONFLICT clause that adds a row's sums to the stored row."""
    table = model._meta.db_table
    update = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
    return table, (*key, *sums), f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}"


def _upsert_small(tables: list[tuple], first: tuple[str, list] | None = None) -> tuple[str, list]:
    """PostgreSQL: a few rows into each of several bucket tables, as one statement (after `first`, if given).

    Each table's upsert but the last is a data-modifying WITH query of the last one: PostgreSQL runs
    every one of them, once, in one snapshot. Every writer sends the same shape (tables in a fixed
    order, rows sorted by key), so concurrent writers lock bucket rows in one order and cannot deadlock.
    """
    parts, params = ([first[0]], list(first[1])) if first else ([], [])
    for model, key, sums, rows in tables:
        table, columns, conflict = _upsert_parts(model, key, sums)
        rows.sort(key=lambda row: row[: len(key)])
        values = ", ".join([f"({', '.join(['%s'] * len(columns))})"] * len(rows))
        parts.append(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {conflict}")  # noqa: S608
        params.extend(value for row in rows for value in row)
    *leading, last = parts
    sql = "".join(f"{'WITH' if i == 0 else ','} upsert_{i} AS ({part}) " for i, part in enumerate(leading)) + last
    return sql, params


def _upsert_adding(
    model, key: tuple[str, ...], sums: tuple[str, ...], rows: list[BucketRow] | list[RunBucketRow]
) -> None:
    """Insert each row, or add its sums to the row with the same key: one statement on both databases.

    Table and column names come from the models, never from input.
    """
    table, columns, conflict = _upsert_parts(model, key, sums)
    # Sorted, so concurrent writers take the bucket rows' locks in one order and cannot deadlock.
    rows.sort(key=lambda row: row[: len(key)])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Many distinct buckets (a big file): COPY them into a scratch table, then one upsert.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS scratch_{table} ON COMMIT DELETE ROWS AS "  # noqa: S608
                f"SELECT {', '.join(columns)} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY scratch_{table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM scratch_{table} "  # noqa: S608
                f"ORDER BY {', '.join(key)} {conflict}"
            )
            cursor.execute(f"TRUNCATE scratch_{table}")
            return
        adapt_time = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) {conflict}",  # noqa: S608
            [tuple(adapt_time(v) if isinstance(v, dt.datetime) else _plain(v) for v in row) for row in rows],
        )


def _plain(value):
    return str(value) if isinstance(value, Decimal) else value


def _add_to_runs(events: list[UsageEvent]) -> None:
    by_run: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        if e.run_id:
            by_run[e.run_id][e.phase_id] += e.total_tokens
    if by_run:
        add_usage_tokens(tokens_by_run={run_id: dict(phases) for run_id, phases in by_run.items()})


def import_lines(batch: list[tuple[int, bytes]]) -> BatchResult:
    """Parse, check and record one batch of numbered JSON lines; rejections carry line numbers."""
    return write_events(*read_lines(batch), atomic_batch=False)


def read_lines(batch: list[tuple[int, bytes]]) -> tuple[list[tuple[int, UsageEvent]], BatchResult]:
    """Parse and check numbered JSON lines, each keyed by its request_id or by one derived from it.

    Most lines take parse_line's quick way; the rest are parsed in full, which names what is wrong.
    """
    catalog, now = pricing_catalog(), clock.now()
    keyed: list[tuple[int, UsageEvent]] = []
    checked = BatchResult()
    for number, line in batch:
        try:
            event = parse_line(line, catalog=catalog, now=now)
            if event is None:
                item = parse_json(line)
                event = parse_event(item, catalog=catalog, now=now)
                if event.request_id is None and item.get("created_at", item.get("at")) is None:
                    checked.rejected.append((number, NO_KEY))
                    continue
            if event.request_id is None:
                event.request_id = derived_request_id(event)
            elif event.request_id.startswith(DERIVED_PREFIX):
                raise EventInvalid({"request_id": RESERVED_ID})
        except DomainError as exc:
            checked.rejected.append((number, f"not valid JSON: {exc.details.get('body', exc.message)}"))
            continue
        except EventInvalid as exc:
            checked.rejected.append((number, str(exc)))
            continue
        keyed.append((number, event))
    return keyed, checked


def derived_request_id(event: UsageEvent) -> str:
    """The idempotency key of a file line that has none: its figures and its time, hashed.

    The same call imported again (from the same file or another) is then a duplicate. Two lines with
    the same figures and the same created_at, to the microsecond, are taken to be one call.
    """
    digest = figures_digest((*event.figures(), event.created_at.isoformat()))
    return f"{DERIVED_PREFIX}{digest}"
