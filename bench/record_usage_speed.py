"""How fast `record_usage --file` imports into PostgreSQL, beside a bare COPY of the same rows, and its memory.

    .venv/bin/python bench/record_usage_speed.py [--events 1000000] [--repeat 3] [--json]

The import is the real command (`manage.py record_usage --file`, in its own process, Django start-up
included): JSON parsing, validation, pricing, idempotency checks, the COPY of the events, the hourly
and daily buckets and the runs' token totals. The reference is psycopg's COPY of the same rows into a
table with the same columns and a unique request_id, and nothing else (file parsing not timed).
While the command runs, the RSS of its whole process tree is summed every 50 ms; the peak is kept.
Targets: 50,000 events/s, peak RSS under 200 MB.
"""

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _db import ROOT, database_url, use_database

DATABASE = "autopack_bench_ingest"
TARGET = 50_000
RSS_TARGET_MB = 200


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


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def run_import(path) -> tuple[float, float]:
    """Seconds taken by `manage.py record_usage --file path`, and the peak RSS of its process tree."""
    env = {**os.environ, "DATABASE_URL": database_url(DATABASE)}
    command = [sys.executable, "manage.py", "record_usage", "--file", str(path)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_rss_mb(process.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"record_usage failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON line for bench/run_all.py")
    args = parser.parse_args()
    use_database(DATABASE)

    from django.db import connection

    from runs.models import Run, UnclaimedUsage
    from usage.models import KeyUsageBucket, LlmUsageEvent, RunUsageBucket, UsageBucket

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as tmp:
        path = tmp.name
    make_file(path, args.events, dt.datetime.now(dt.UTC))
    ours, reference, peaks = [], [], []
    for _ in range(args.repeat):
        with connection.cursor() as cursor:
            for model in (LlmUsageEvent, UsageBucket, RunUsageBucket, KeyUsageBucket, UnclaimedUsage):
                cursor.execute(f"TRUNCATE {model._meta.db_table}")
        Run.objects.filter(run_id__startswith="bench-run-").delete()
        connection.close()
        seconds, peak = run_import(path)
        assert LlmUsageEvent.objects.count() == args.events
        ours.append(args.events / seconds)
        peaks.append(peak)
        reference.append(reference_copy(path))
    os.unlink(path)

    result = {"events": args.events, "events_per_s": ours, "copy_rows_per_s": reference, "peak_rss_mb": peaks}
    if args.json:
        print(json.dumps(result))
        return
    ours, reference, peak = (statistics.median(v) for v in (ours, reference, peaks))
    print(f"events: {args.events:,}; medians of {args.repeat} runs")
    print(f"record_usage --file (validate, COPY, buckets, run totals): {ours:>10,.0f} events/s")
    print(f"reference: bare psycopg COPY, unique request_id:           {reference:>10,.0f} rows/s")
    print(f"ours / reference: {ours / reference:.2f}; target {TARGET:,}/s: {'met' if ours >= TARGET else 'NOT met'}")
    print(f"peak RSS of the command's process tree: {peak:.0f} MB; target under {RSS_TARGET_MB} MB")


if __name__ == "__main__":
    main()
