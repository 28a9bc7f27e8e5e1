"""`make bench`: every speed figure of issue 15 beside a reference measured in the same run, in one table.

    .venv/bin/python bench/run_all.py

Seeds PostgreSQL (10 million and 10 thousand usage events, reused while under a day old), serves the
app on each as `make run` does, loads it with wrk, runs the in-process benchmarks in child processes,
and prints one Markdown table. Every row is measured three times; the table shows the medians.
"""

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _db import ROOT, prepare_database
from http_speed import LARGE_RUN, SMALL_RUN, Dashboard
from serve import WRK_LOAD, WRK_ONE_AT_A_TIME, Server
from usage_scale import seed

REPEAT = 3
LARGE, SMALL = ("autopack_bench_usage_large", 10_000_000), ("autopack_bench_usage_small", 10_000)
INGEST_EVENTS = 1_000_000


@dataclass
class Row:
    figure: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None  # None: informational

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}"
        verdict = "info" if self.met is None else ("met" if self.met else "NOT met")
        return [self.figure, self.ours, self.reference, ratio, self.target, verdict]


def child(script: str, *args: str) -> dict:
    """Run a benchmark script in its own process (Django is set up once per database) and read its JSON."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), "--json", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def med(values) -> float:
    return statistics.median(values)


def http_rows(rounds: list[dict], sizes: dict, rss: tuple[float, float]) -> list[Row]:
    def figure(key, stat="rps"):
        return med(r[key][stat] for r in rounds)

    def throughput(name, key, target_ratio, answered=True, note=""):
        # Each load is paired with a /healthz load right after it: the ratio is the median of the pairs'.
        ours, healthz = figure(key), figure(f"{key}_healthz")
        ratio = med(r[key]["rps"] / r[f"{key}_healthz"]["rps"] for r in rounds)
        return Row(
            name,
            f"{ours:,.0f} req/s{note}",
            f"/healthz {healthz:,.0f} req/s",
            ratio,
            f"ratio ≥ {target_ratio}",
            answered and ratio >= target_ratio,
        )

    def latency(name, key, reference_key):
        ours, reference = figure(key, "p50"), figure(reference_key, "p50")
        return Row(
            name,
            f"p50 {ours:.1f} ms",
            f"p50 {reference:.1f} ms",
            ours / reference,
            "ratio ≤ 1.25",
            ours / reference <= 1.25,
        )

    large, small = LARGE_RUN[0], SMALL_RUN[0]
    rows = [
        throughput(
            f"unchanged run poll (answers {sizes['unchanged_poll_status']})",
            "unchanged_poll",
            0.5,
            sizes["unchanged_poll_status"] == 204,
        ),
        latency(
            "dashboard poll, 1 change, 500 vs 12 phases", f"changed_dashboard_{large}", f"changed_dashboard_{small}"
        ),
        latency("run page poll, 1 change, 500 vs 12 phases", f"changed_page_{large}", f"changed_page_{small}"),
        throughput("run status JSON, 500 phases", "status", 0.25),
        throughput("mapping panel", "mapping_panel", 0.2),
        Row(
            "mapping panel HTML size",
            f"{sizes['mapping_panel_bytes'] / 1024:.1f} KB",
            "",
            None,
            "< 30 KB",
            sizes["mapping_panel_bytes"] < 30 * 1024,
        ),
    ]
    for name, status in sizes["panel_poll_status"].items():
        unchanged = status in (204, 304)
        note = "" if unchanged else f" (answers {status}: no 'nothing changed' answer)"
        rows.append(throughput(f"{name} poll, nothing changed", f"{name}_poll", 0.5, unchanged, note))
    ours, reference = figure("usage_panel_large", "p50"), figure("usage_panel_small", "p50")
    rows.append(
        Row(
            "usage panel (month), 10M vs 10k events",
            f"p50 {ours:.1f} ms",
            f"p50 {reference:.1f} ms",
            ours / reference,
            "< 20 ms and ≤ 1.5x",
            ours < 20 and ours / reference <= 1.5,
        )
    )
    html, assets = sizes["dashboard_html_bytes"] / 1024, sizes["dashboard_asset_bytes"] / 1024
    rows.append(
        Row(
            "/dashboard/ first load, gzip",
            f"{html + assets:.1f} KB",
            f"HTML {html:.1f} KB + CSS/JS {assets:.1f} KB",
            None,
            "< 60 KB",
            html + assets < 60,
        )
    )
    before, after = rss
    rows.append(
        Row(
            "worker RSS growth over 10,000 polls",
            f"{after - before:+.1f} MB",
            f"{before:.0f} MB before",
            None,
            "informational",
            None,
        )
    )
    return rows


def gateway_rows(runs: list[dict]) -> list[Row]:
    def figure(key):
        return med(r[key] for r in runs)

    rows = []
    for name, key in (("gateway, non-streamed call", "call"), ("gateway, first streamed chunk", "first_chunk")):
        ours, bare = figure(f"{key}_p50_ms"), figure(f"bare_{key}_p50_ms")
        added99 = figure(f"{key}_p99_ms") - figure(f"bare_{key}_p99_ms")
        rows.append(
            Row(
                f"{name}: added p50",
                f"+{ours - bare:.2f} ms (p99 +{added99:.2f})",
                f"provider alone p50 {bare:.2f} ms",
                ours / bare,
                "≤ 5 ms",
                ours - bare <= 5,
            )
        )
    ours, bare = figure("run_call_p50_ms"), figure("bare_run_call_p50_ms")
    rows.append(
        Row(
            "gateway, call in a run and phase: added p50",
            f"+{ours - bare:.2f} ms",
            f"provider alone p50 {bare:.2f} ms",
            ours / bare,
            "informational",
            None,
        )
    )
    rate, bare_rate = figure("calls_per_s"), figure("bare_calls_per_s")
    rows.append(
        Row(
            "gateway calls/s, 8 clients, 1 worker",
            f"{rate:,.0f} calls/s",
            f"provider alone {bare_rate:,.0f} calls/s",
            rate / bare_rate,
            "≥ 88 (2x LiteLLM's 44)",
            rate >= 88 and figure("bad_answers") == 0,
        )
    )
    return rows


def process_rows(select: list[dict], ingest: dict, llm: list[dict]) -> list[Row]:
    rate, copy = med(ingest["events_per_s"]), med(ingest["copy_rows_per_s"])
    p99, p50, cold = (
        med(s["p99"] for s in select),
        med(s["median"] for s in select),
        med(med(s["cold"]) for s in select),
    )
    peak = med(ingest["peak_rss_mb"])
    service, bare = med(x["service_ms"] for x in llm), med(x["bare_ms"] for x in llm)
    return [
        Row(
            "record_usage --file, 1M lines",
            f"{rate:,.0f} events/s",
            f"COPY {copy:,.0f} rows/s",
            rate / copy,
            "≥ 50,000 events/s",
            rate >= 50_000,
        ),
        Row(
            "router select() at 10M events",
            f"p99 {p99:.3f} ms (p50 {p50:.3f})",
            f"uncached quota read {cold:.1f} ms",
            p99 / cold,
            "p99 < 0.1 ms",
            p99 < 0.1,
        ),
        Row("record_usage --file, 1M lines: peak RSS", f"{peak:.0f} MB", "", None, "< 200 MB", peak < 200),
        Row(
            "LlmService added per call (median)",
            f"{service - bare:.2f} ms",
            f"bare SDK call {bare:.2f} ms",
            service / bare,
            "informational (the gateway's rows below)",
            None,
        ),
    ]


def main():
    started = time.perf_counter()
    for name, count in (SMALL, LARGE):
        prepare_database(name)
        seed(name, count, reseed=False)
    print("== serving both databases and loading them with wrk", file=sys.stderr)
    with Server(LARGE[0]) as large, Server(SMALL[0]) as small:
        dashboard = Dashboard(large, small)
        rounds = [dashboard.round() for _ in range(REPEAT)]
        sizes = dashboard.sizes()
        rss = dashboard.worker_growth()
    print("== select(), record_usage --file, LlmService and the gateway, each in its own process", file=sys.stderr)
    select = [child("select_speed.py") for _ in range(REPEAT)]
    ingest = child("record_usage_speed.py", "--events", str(INGEST_EVENTS), "--repeat", str(REPEAT))
    llm = [child("llm_overhead.py") for _ in range(REPEAT)]
    gateway = [child("gateway_overhead.py") for _ in range(REPEAT)]

    rows = process_rows(select, ingest, llm) + gateway_rows(gateway)
    rows[2:2] = http_rows(rounds, sizes, rss)
    header = ["figure", "ours", "reference (same run)", "ratio", "target", "verdict"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    print(
        f"\nMedians of {REPEAT} rounds. req/s: `wrk {' '.join(WRK_LOAD)} --latency` against gunicorn as `make run` "
        f"starts it; latency: `wrk {' '.join(WRK_ONE_AT_A_TIME)} --latency`, server answer time at p50. "
        "A poll carrying 1 change asks with v = the run's version - 1, so it carries the one phase changed last. "
        "/dashboard/ opens on the 500-phase run. Ratios compare figures of this run only."
    )
    print(f"Total time: {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
