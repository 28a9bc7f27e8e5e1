"""Compare a load's database with the ledger of what the server answered (bench/load.py writes the ledger).

    .venv/bin/python bench/ledger.py DATABASE_URL LEDGER.json

Every event a reply said was recorded must be stored, once, with the figures sent; an event whose
outcome the clients never learned (a 503, a connection cut) may be stored or not. Whatever is stored
must be counted everywhere: hourly and daily totals, per-run and per-sender totals, phase, tier and
run figures, and every usage window as the dashboard computes it (usage.aggregation), each against
sums made here from the events themselves. Prints one JSON line: events counted, comparisons made,
mismatches. Reads the whole database, which is the load's own.
"""

import datetime as dt
import json
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from _db import setup_django

FIGURES = ("provider", "model", "role", "run_id", "phase_id", "prompt_tokens", "completion_tokens")
SUMS = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "calls")
MICRO = Decimal("0.000001")


class Comparison:
    """Counts comparisons and keeps every mismatch, named."""

    def __init__(self):
        self.checks = 0
        self.mismatches: list[str] = []

    def same(self, what: str, stored, expected) -> None:
        self.checks += 1
        if stored != expected:
            self.mismatches.append(f"{what}: stored {stored}, expected {expected}")

    def sums(self, what: str, stored: dict, expected: dict) -> None:
        """Rows of sums by key: the same keys, the same sums."""
        for key in sorted(stored.keys() | expected.keys(), key=str):
            self.same(f"{what} {_label(key)}", stored.get(key), expected.get(key))


def _label(key) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return "/".join(f"{p:%Y-%m-%d %H:%M}" if isinstance(p, dt.datetime) else str(p) for p in parts)


def check(ledger: dict) -> dict:
    from usage.models import LlmUsageEvent

    compare = Comparison()
    events = list(
        LlmUsageEvent.objects.values(
            "request_id", *FIGURES, "cached_prompt_tokens", "total_tokens", "cost_usd", "created_at", "sent_by"
        )
    )
    stored_ids = check_events(compare, events, ledger)
    check_buckets(compare, events)
    check_runs(compare, events, ledger)
    check_windows(compare, events)
    check_notes(compare, ledger)
    sent, recorded = set(ledger["sent"]), set(ledger["recorded"])
    return {
        "counted": len(events),
        "unknown_stored": len((stored_ids & sent) - recorded),
        "checks": compare.checks,
        "mismatches": compare.mismatches,
    }


def check_events(compare: Comparison, events: list[dict], ledger: dict) -> set[str]:
    """Stored once each, with the figures sent; nothing stored that was not sent; nothing answered as recorded lost."""
    sent, recorded = ledger["sent"], set(ledger["recorded"])
    stored = {}
    for event in events:
        rid = event["request_id"]
        if rid in stored:
            compare.mismatches.append(f"event {rid} stored twice")
        stored[rid] = event
    compare.same("events stored twice", len(events) - len(stored), 0)
    for rid in sorted(recorded - stored.keys()):
        compare.mismatches.append(f"event {rid} was answered as recorded but is not stored")
    compare.checks += len(recorded)
    for rid in sorted(stored.keys() - sent.keys(), key=str):
        compare.mismatches.append(f"event {rid} is stored but was never sent")
    for rid in sorted(stored.keys() & sent.keys()):
        event, asked = stored[rid], sent[rid]
        expected = tuple(asked.get(name, "") for name in FIGURES)
        compare.same(f"event {rid}", tuple(event[name] for name in FIGURES), expected)
        compare.same(f"event {rid} total", event["total_tokens"], asked["prompt_tokens"] + asked["completion_tokens"])
    return set(stored)


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _day(moment: dt.datetime) -> dt.datetime:
    return _hour(moment).replace(hour=0)


def _figures(event: dict) -> tuple:
    """An event's part of every sum: prompt, completion and total tokens, cost, one call."""
    cost = event["cost_usd"] if event["cost_usd"] is not None else Decimal(0)
    return (event["prompt_tokens"] or 0, event["completion_tokens"] or 0, event["total_tokens"], cost, 1)


def _add(sums: dict, key, values: tuple) -> None:
    sums[key] = tuple(a + b for a, b in zip(sums.get(key, (0,) * len(values)), values, strict=True))


def check_buckets(compare: Comparison, events: list[dict]) -> None:
    """Hourly and daily totals, per-run and per-sender hours: each the sum of its events."""
    from usage.models import KeyUsageBucket, RunUsageBucket, UsageBucket

    hours, days, runs, senders = {}, {}, {}, {}
    for e in events:
        figures = _figures(e)
        cell = (e["provider"], e["model"], e["role"])
        _add(hours, (_hour(e["created_at"]), *cell), figures)
        _add(days, (_day(e["created_at"]), *cell), figures)
        if e["run_id"]:
            _add(runs, (_hour(e["created_at"]), e["run_id"], e["phase_id"]), figures[2:])
        _add(senders, (_hour(e["created_at"]), e["sent_by"]), figures[2:])
    for size, expected in (("hour", hours), ("day", days)):
        rows = UsageBucket.objects.filter(size=size).values_list("start", "provider", "model", "role", *SUMS)
        compare.sums(f"{size} total", {tuple(r[:4]): tuple(r[4:]) for r in rows}, expected)
    rows = RunUsageBucket.objects.values_list("start", "run_id", "phase_id", *SUMS[2:])
    compare.sums("run hour", {tuple(r[:3]): tuple(r[3:]) for r in rows}, runs)
    rows = KeyUsageBucket.objects.values_list("start", "sent_by", *SUMS[2:])
    compare.sums("sender hour", {tuple(r[:2]): tuple(r[2:]) for r in rows}, senders)


def check_runs(compare: Comparison, events: list[dict], ledger: dict) -> None:
    """Phase, tier and run tokens against the events naming them; the load's run's states against the ledger."""
    from runs.models import Phase, Run, Tier, UnclaimedUsage

    by_phase: dict[tuple[str, str], int] = defaultdict(int)
    for e in events:
        if e["run_id"]:
            by_phase[(e["run_id"], e["phase_id"])] += e["total_tokens"]
    runs = {r.run_id: r for r in Run.objects.all()}
    phases = defaultdict(list)
    for phase in Phase.objects.select_related("run", "tier"):
        phases[phase.run.run_id].append(phase)
    for run_id, run in runs.items():
        known = {p.phase_id for p in phases[run_id]}
        for phase in phases[run_id]:
            metered = by_phase.get((run_id, phase.phase_id), 0)
            compare.same(f"phase {run_id}/{phase.phase_id} metered tokens", phase.usage_tokens or 0, metered)
            expected = max(phase.reported_tokens, phase.usage_tokens or 0)
            compare.same(f"phase {run_id}/{phase.phase_id} tokens", phase.tokens_used, expected)
        without = sum(t for (r, p), t in by_phase.items() if r == run_id and p not in known)
        compare.same(f"run {run_id} tokens without a phase", run.usage_tokens_without_phase, without)
        metered = sum(t for (r, _), t in by_phase.items() if r == run_id)
        compare.same(f"run {run_id} metered tokens", run.tokens_metered, metered)
        phase_tokens = sum(p.tokens_used for p in phases[run_id])
        compare.same(f"run {run_id} tokens", run.tokens_used, phase_tokens + without)
        reported = sum(p.reported_tokens for p in phases[run_id])
        compare.same(f"run {run_id} reported tokens", run.tokens_reported, reported)
    for tier in Tier.objects.select_related("run"):
        of_tier = [p.tokens_used for p in phases[tier.run.run_id] if p.tier_id == tier.pk]
        compare.same(f"tier {tier.run.run_id}/{tier.tier_id} tokens", tier.tokens_used, sum(of_tier))
    waiting = {(r, p): t for (r, p), t in by_phase.items() if r not in runs}
    unclaimed = {(r, p): t for r, p, t in UnclaimedUsage.objects.values_list("run_id", "phase_id", "tokens")}
    compare.sums("tokens waiting for their run", unclaimed, waiting)

    run_id = ledger["run_id"]
    run = runs.get(run_id)
    compare.same(f"run {run_id} exists", run is not None, True)
    if run is None:
        return
    compare.same(f"run {run_id} state", run.state, ledger["run_state"])
    states = {p.phase_id: p.state for p in phases[run_id]}
    compare.sums(f"run {run_id} phase state", states, ledger["phase_states"])
    tiers = dict(Tier.objects.filter(run=run).values_list("tier_id", "state"))
    compare.sums(f"run {run_id} tier state", tiers, ledger["tier_states"])


def check_windows(compare: Comparison, events: list[dict]) -> None:
    """Each usage window (day, week, month) as the dashboard reads it, at three moments, against raw sums.

    Now, the events sit in the windows' raw edges; an hour after the last event's hour ends, they are read
    from hourly totals; a day after its day ends, from daily ones too.
    """
    from autopack_site import clock
    from usage.aggregation import PERIODS, provider_totals, usage_summary

    if not events:
        return
    last = max(e["created_at"] for e in events)
    moments = {
        "now": clock.now(),
        "an hour on": _hour(last) + dt.timedelta(hours=1, minutes=30),
        "a day on": _day(last) + dt.timedelta(days=1, hours=1),
    }
    for when, end in moments.items():
        for period, length in PERIODS.items():
            providers, models = {}, {}
            for e in events:
                if end - length < e["created_at"] <= end:
                    _add(providers, e["provider"], _figures(e))
                    _add(models, (e["provider"], e["model"]), (e["total_tokens"], 1))
            summary = usage_summary(period, now=end)
            what = f"{period} window {when}"
            shown = {p["provider"]: tuple(p[name] for name in SUMS) for p in summary["providers"] if p["calls"]}
            expected = {k: (*v[:3], str(v[3].quantize(MICRO)), v[4]) for k, v in providers.items()}
            compare.sums(f"{what}, provider", shown, expected)
            shown = {(m["provider"], m["model"]): (m["total_tokens"], m["calls"]) for m in summary["models"]}
            compare.sums(f"{what}, model", shown, models)
            shown = {k: v for k, v in provider_totals(period, now=end).items() if v}
            compare.sums(f"{what}, quota total", shown, {k: v[2] for k, v in providers.items() if v[2]})


def check_notes(compare: Comparison, ledger: dict) -> None:
    """Every note answered 200 is stored; a note never answered may be stored or not."""
    from notes.models import HumanNote

    stored = HumanNote.objects.filter(run__run_id=ledger["run_id"]).count()
    low, high = ledger["notes_accepted"], ledger["notes_accepted"] + ledger["notes_unknown"]
    compare.same("notes stored, within what was answered", low <= stored <= high, True)


def main():
    url, path = sys.argv[1:3]
    setup_django(url)
    print(json.dumps(check(json.loads(Path(path).read_text())), default=str))


if __name__ == "__main__":
    main()
