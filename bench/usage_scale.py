"""Usage endpoint latency at 10 thousand and 10 million events, side by side, on PostgreSQL.

    .venv/bin/python bench/usage_scale.py [--large 10000000] [--small 10000] [--reseed]

Seeds two databases with events over the last 180 days (runs one after another, as executors
write them) and their hourly, daily and per-run buckets, then times GET /dashboard/usage for each
period on both, in rounds that alternate between them. Server time is the Django handler's time for
the request (no network). Targets: under 20 ms at 10 million, within 1.5x of 10 thousand.
A seeded database is reused on later runs while it is under a day old.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _db import ROOT, SERVER, use_database

SEED_EVENTS = """
INSERT INTO usage_llmusageevent (provider, model, role, run_id, phase_id, prompt_tokens, completion_tokens,
    total_tokens, cached_prompt_tokens, reasoning_tokens, cost_usd, latency_ms, status, request_id, is_demo,
    sent_by, created_at)
SELECT (ARRAY['openai','openai','anthropic','google'])[1 + i %% 4],
       (ARRAY['gpt-4o','gpt-4o-mini','claude-sonnet-4-5','gemini-2.5-flash'])[1 + i %% 4],
       (ARRAY['builder','auditor','agent:planner'])[1 + i %% 3],
       'bench-run-' || (i / 5000), 'P' || ((i / 400) %% 12),
       p, c, p + c, p / 4, 0, round((p * 2.5 + c * 10) / 1e6, 10), 1200, 'ok', NULL, false, '',
       now() - interval '180 days' * (1 - i::float8 / %(n)s) - interval '1 second' * random()
FROM (SELECT i, (random() * 10000)::int AS p, (random() * 2000)::int AS c
      FROM generate_series(1, %(n)s) AS i) AS s
"""
SEED_BUCKETS = [
    """INSERT INTO usage_usagebucket (size, start, provider, model, role, prompt_tokens, completion_tokens,
           total_tokens, cost_usd, calls)
       SELECT 'hour', date_trunc('hour', created_at), provider, model, role, sum(coalesce(prompt_tokens, 0)),
              sum(coalesce(completion_tokens, 0)), sum(total_tokens), coalesce(sum(cost_usd), 0), count(*)
       FROM usage_llmusageevent GROUP BY 2, 3, 4, 5""",
    """INSERT INTO usage_usagebucket (size, start, provider, model, role, prompt_tokens, completion_tokens,
           total_tokens, cost_usd, calls)
       SELECT 'day', date_trunc('day', start), provider, model, role, sum(prompt_tokens), sum(completion_tokens),
              sum(total_tokens), sum(cost_usd), sum(calls)
       FROM usage_usagebucket WHERE size = 'hour' GROUP BY 2, 3, 4, 5""",
    """INSERT INTO usage_runusagebucket (start, run_id, phase_id, total_tokens, cost_usd, calls)
       SELECT date_trunc('hour', created_at), run_id, phase_id, sum(total_tokens), coalesce(sum(cost_usd), 0),
              count(*)
       FROM usage_llmusageevent GROUP BY 1, 2, 3""",
    """INSERT INTO usage_keyusagebucket (start, sent_by, total_tokens, cost_usd, calls)
       SELECT date_trunc('hour', created_at), sent_by, sum(total_tokens), coalesce(sum(cost_usd), 0), count(*)
       FROM usage_llmusageevent WHERE NOT is_demo GROUP BY 1, 2""",
]


def seed(name: str, count: int, reseed: bool) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (events bigint, seeded_at timestamptz)")
        meta = conn.execute("SELECT events, seeded_at > now() - interval '1 day' FROM bench_meta").fetchone()
        if meta and meta[0] == count and meta[1] and not reseed:
            print(f"{name}: reusing {count:,} seeded events", file=sys.stderr)
            return
        started = time.perf_counter()
        conn.execute(
            "TRUNCATE usage_llmusageevent, usage_usagebucket, usage_runusagebucket, usage_keyusagebucket, bench_meta"
        )
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_llmusageevent' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for index_name, _ in indexes:
            conn.execute(f'DROP INDEX "{index_name}"')
        conn.execute(SEED_EVENTS, {"n": count})
        for _, definition in indexes:
            conn.execute(definition)
        for statement in SEED_BUCKETS:
            conn.execute(statement)
        conn.execute("VACUUM ANALYZE")
        conn.execute("INSERT INTO bench_meta VALUES (%s, now())", (count,))
        print(f"{name}: seeded {count:,} events in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def measure(name: str, rounds: int) -> dict:
    """Runs in a child process pointed at one database: per-period request times in ms."""
    use_database(name)
    from django.test import Client

    client = Client(SERVER_NAME="localhost")
    times = {}
    for period in ("day", "week", "month"):
        for _ in range(3):
            client.get("/dashboard/usage", {"period": period})
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get("/dashboard/usage", {"period": period})
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        times[period] = samples
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, 20)))
        return

    sizes = {"small": (args.small, "autopack_bench_usage_small"), "large": (args.large, "autopack_bench_usage_large")}
    for count, name in sizes.values():
        # Create and migrate the database in a child (Django is set up once per process), then seed it.
        subprocess.run([sys.executable, __file__, "--child", name], check=True, capture_output=True, cwd=ROOT)
        seed(name, count, args.reseed)

    samples = {key: {"day": [], "week": [], "month": []} for key in sizes}
    for _ in range(args.rounds):
        for key, (_, name) in sizes.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", name], check=True, capture_output=True, text=True, cwd=ROOT
            ).stdout
            for period, values in json.loads(out.strip().splitlines()[-1]).items():
                samples[key][period] += values

    print(f"GET /dashboard/usage, server time in ms (median / p95 of {args.rounds * 20} requests)")
    print(f"{'period':<8}{args.small:>14,} events{args.large:>18,} events{'ratio':>10}")
    worst, worst_ratio = 0.0, 0.0
    for period in ("day", "week", "month"):
        small, large = samples["small"][period], samples["large"][period]
        ms, ml = statistics.median(small), statistics.median(large)
        p95s, p95l = statistics.quantiles(small, n=20)[-1], statistics.quantiles(large, n=20)[-1]
        worst, worst_ratio = max(worst, ml), max(worst_ratio, ml / ms)
        print(f"{period:<8}{ms:>8.2f} / {p95s:<8.2f}{ml:>12.2f} / {p95l:<8.2f}{ml / ms:>8.2f}x")
    print(
        f"targets: under 20 ms at {args.large:,} ({'met' if worst < 20 else 'NOT met'}), "
        f"within 1.5x of the small set ({'met' if worst_ratio <= 1.5 else 'NOT met'}: worst {worst_ratio:.2f}x)"
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
