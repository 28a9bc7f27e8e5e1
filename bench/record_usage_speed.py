"""How fast `record_usage --file` imports into PostgreSQL, beside a bare COPY of the same rows.

    .venv/bin/python bench/record_usage_speed.py [--events 200000]

Both figures are measured in this run on this machine. The import includes everything it does for
real: JSON parsing, validation, pricing, idempotency checks, the COPY of the events, the hourly and
daily buckets and the runs' token totals. The reference is psycopg's COPY of the same rows into a
table with the same columns and a unique request_id, and nothing else. Target: 50,000 events/s.
"""

import argparse
import datetime as dt
import io
import json
import random
import tempfile
import time

from _db import use_database

TARGET = 50_000


def make_file(path, count: int, now: dt.datetime, *, runs: int = 40) -> None:
    """Events as executors write them: runs one after another over the last week, calls in time order."""
    rng = random.Random(42)
    models = [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-flash"),
    ]
    roles = ["builder", "auditor", "agent:planner"]
    start = now - dt.timedelta(days=7)
    step = dt.timedelta(days=7) / count
    per_run = max(1, count // runs)
    with open(path, "w") as out:
        for i in range(count):
            provider, model = models[i % 4]
            prompt = rng.randint(100, 20_000)
            out.write(
                json.dumps(
                    {
                        "provider": provider,
                        "model": model,
                        "role": roles[i % 3],
                        "run_id": f"bench-run-{i // per_run}",
                        "phase_id": f"P{(i % per_run) * 12 // per_run}",
                        "prompt_tokens": prompt,
                        "completion_tokens": rng.randint(10, 4_000),
                        "cached_prompt_tokens": prompt // 4,
                        "latency_ms": rng.randint(200, 9_000),
                        "request_id": f"bench-{i:09d}",
                        "created_at": (start + i * step).isoformat(),
                    }
                )
                + "\n"
            )


def reference_copy(path) -> float:
    from django.db import connection

    rows = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            rows.append(
                (
                    d["provider"],
                    d["model"],
                    d["role"],
                    d["run_id"],
                    d["phase_id"],
                    d["prompt_tokens"],
                    d["completion_tokens"],
                    d["prompt_tokens"] + d["completion_tokens"],
                    d["cached_prompt_tokens"],
                    d["latency_ms"],
                    d["request_id"],
                    d["created_at"],
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy_reference")
        cursor.execute(
            "CREATE TABLE bench_copy_reference (id bigserial primary key, provider varchar(50), model varchar(100), "
            "role varchar(100), run_id varchar(200), phase_id varchar(100), prompt_tokens bigint, "
            "completion_tokens bigint, total_tokens bigint, cached_prompt_tokens bigint, latency_ms integer, "
            "request_id varchar(200) unique, created_at timestamptz)"
        )
        connection.commit() if not connection.get_autocommit() else None
        started = time.perf_counter()
        with cursor.cursor.copy(
            "COPY bench_copy_reference (provider, model, role, run_id, phase_id, prompt_tokens, completion_tokens, "
            "total_tokens, cached_prompt_tokens, latency_ms, request_id, created_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy_reference")
    return len(rows) / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    use_database("autopack_bench_ingest")

    from django.core.management import call_command
    from django.db import connection

    from runs.models import Run, UnclaimedUsage
    from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket

    with connection.cursor() as cursor:
        for model in (LlmUsageEvent, UsageBucket, RunUsageBucket, UnclaimedUsage):
            cursor.execute(f"TRUNCATE {model._meta.db_table}")
    Run.objects.filter(run_id__startswith="bench-run-").delete()

    now = dt.datetime.now(dt.UTC)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as tmp:
        path = tmp.name
    make_file(path, args.events, now)

    started = time.perf_counter()
    call_command("record_usage", "--file", path, stdout=io.StringIO(), stderr=io.StringIO())
    ours = args.events / (time.perf_counter() - started)
    assert LlmUsageEvent.objects.count() == args.events

    started = time.perf_counter()
    call_command("record_usage", "--file", path, stdout=io.StringIO(), stderr=io.StringIO())
    replay = args.events / (time.perf_counter() - started)

    reference = reference_copy(path)
    print(f"events: {args.events:,}")
    print(f"record_usage --file (validate, COPY, buckets, run totals): {ours:>10,.0f} events/s")
    print(f"replay of the same file (all duplicates, nothing written):  {replay:>10,.0f} events/s")
    print(f"reference: bare psycopg COPY, unique request_id:           {reference:>10,.0f} rows/s")
    print(f"ours / reference: {ours / reference:.2f}; target {TARGET:,}/s: {'met' if ours >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
