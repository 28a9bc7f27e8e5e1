"""Usage over rolling windows, exact to the token, in time that does not grow with history.

A window (start, end] is read in pieces: whole days from the daily buckets, whole hours from the
hourly buckets, and the ragged partial hours at both edges from the raw events. Buckets are kept in
the same transaction as their events, so the pieces add up to a raw SUM over the window.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum

from autopack_site import clock
from autopack_site.errors import InvalidInput
from autopack_site.prepared import PreparedQuery
from routing.config import ROLES, ConfigError, config_stamp, get_config, pricing_catalog
from runs.models import Run
from runs.progress import level_for
from usage.models import KeyUsageBucket, LlmUsageEvent, RunUsageBucket, UsageBucket

PERIODS = {"day": dt.timedelta(hours=24), "week": dt.timedelta(days=7), "month": dt.timedelta(days=30)}
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
FORECAST_HORIZON = dt.timedelta(days=3 * 365)
SUMS = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "calls")


def parse_period(value: str | None) -> str:
    period = value or "week"
    if period not in PERIODS:
        raise InvalidInput("Invalid period", {"period": "must be day, week or month"})
    return period


def period_or_default(value: str | None) -> tuple[str, str]:
    """For pages: the period asked for, or the week with a notice saying why."""
    try:
        return parse_period(value), ""
    except InvalidInput:
        return "week", f"Unknown period “{value[:40]}”: showing the last week."


def _floor(moment: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    if unit == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def window_pieces(start: dt.datetime, end: dt.datetime):
    """Split (start, end] into raw edges and whole hour and day buckets.

    Yields ("head", lo, hi) for events lo < t < hi, ("tail", lo, hi) for events lo <= t <= hi, and
    ("hour" or "day", first, last) for buckets starting first <= s < last.
    """
    first_hour = _floor(start, HOUR) + HOUR
    last_hour = _floor(end, HOUR)
    if first_hour > last_hour:
        # The whole window lies inside one hour: raw events only.
        yield ("head", start, end + dt.timedelta(microseconds=1))
        return
    yield ("head", start, first_hour)
    first_day = _floor(first_hour - dt.timedelta(microseconds=1), DAY) + DAY
    last_day = _floor(last_hour, DAY)
    if first_day < last_day:
        yield ("hour", first_hour, first_day)
        yield ("day", first_day, last_day)
        yield ("hour", last_day, last_hour)
    else:
        yield ("hour", first_hour, last_hour)
    yield ("tail", last_hour, end)


def _grouped_rows(start: dt.datetime, end: dt.datetime, keys: tuple[str, ...]):
    """Rows of `keys` plus SUMS over (start, end], one query per piece of the window."""
    for piece in window_pieces(start, end):
        kind, lo, hi = piece
        # The edges come from the events, demo ones left out as the buckets leave them out.
        if kind == "head":
            rows = LlmUsageEvent.objects.filter(created_at__gt=lo, created_at__lt=hi, is_demo=False)
        elif kind == "tail":
            rows = LlmUsageEvent.objects.filter(created_at__gte=lo, created_at__lte=hi, is_demo=False)
        elif lo < hi:
            rows = UsageBucket.objects.filter(size=kind, start__gte=lo, start__lt=hi)
        else:
            continue
        calls = Count("id") if kind in ("head", "tail") else Sum("calls")
        yield from (
            rows.values(*keys)
            .annotate(
                s_prompt=Sum("prompt_tokens"),
                s_completion=Sum("completion_tokens"),
                s_total=Sum("total_tokens"),
                s_cost=Sum("cost_usd"),
                s_calls=calls,
            )
            .order_by()
        )


def _add(into: dict, row: dict) -> None:
    into["prompt_tokens"] += row["s_prompt"] or 0
    into["completion_tokens"] += row["s_completion"] or 0
    into["total_tokens"] += row["s_total"] or 0
    into["cost_usd"] += Decimal(row["s_cost"] or 0)
    into["calls"] += row["s_calls"] or 0


def _zero() -> dict:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost_usd": Decimal(0), "calls": 0}


@dataclass
class Cap:
    tokens: int | None
    estimated: bool = False


def cap_for(quota, period: str) -> Cap:
    """The provider's cap for the period; a missing daily or monthly cap is estimated from the weekly."""
    if quota is None:
        return Cap(None)
    exact = {"day": quota.daily_token_cap, "week": quota.weekly_token_cap, "month": quota.monthly_token_cap}
    if exact[period] is not None:
        return Cap(exact[period])
    if quota.weekly_token_cap is not None and period != "week":
        factor = {"day": Decimal(1) / 7, "month": Decimal(30) / 7}[period]
        return Cap(int(quota.weekly_token_cap * factor), estimated=True)
    return Cap(None)


def level_for_percent(percent: float | None) -> str:
    return "ok" if percent is None else level_for(percent)


def provider_totals(period: str, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Total tokens per provider over the rolling window: what quota checks need, and nothing more."""
    end = now or clock.now()
    totals: dict[str, int] = defaultdict(int)
    for row in _grouped_rows(end - PERIODS[period], end, ("provider",)):
        totals[row["provider"]] += row["s_total"] or 0
    return dict(totals)


def usage_summary(period: str, *, now: dt.datetime | None = None) -> dict:
    """Providers, models and core/aux roles over the rolling window ending now."""
    end = now or clock.now()
    start = end - PERIODS[period]
    by_cell: dict[tuple, dict] = defaultdict(_zero)
    for row in _grouped_rows(start, end, ("provider", "model", "role")):
        _add(by_cell[(row["provider"], row["model"], row["role"])], row)

    providers: dict[str, dict] = defaultdict(_zero)
    models: dict[tuple, dict] = defaultdict(_zero)
    roles = {"core": _zero(), "aux": _zero()}
    for (provider, model, role), sums in by_cell.items():
        for target in (
            providers[provider],
            models[(provider, model)],
            roles["core" if role in ROLES else "aux"],
        ):
            for key in SUMS:
                target[key] += sums[key]

    try:
        config, config_error = get_config(), None
    except ConfigError as exc:
        config, config_error = None, str(exc)
    quotas = config.provider_quotas if config else {}
    seconds = (end - start).total_seconds()
    provider_rows = []
    for name in sorted(set(providers) | set(quotas)):
        sums = providers[name]
        cap = cap_for(quotas.get(name), period)
        percent = round(100.0 * sums["total_tokens"] / cap.tokens, 1) if cap.tokens else None
        forecast = None
        if cap.tokens and sums["total_tokens"]:
            remaining = cap.tokens - sums["total_tokens"]
            wait = remaining * seconds / sums["total_tokens"]
            # Past the horizon the rate says nothing useful (and far enough it overflows a date).
            if remaining <= 0:
                forecast = end
            elif wait <= FORECAST_HORIZON.total_seconds():
                forecast = end + dt.timedelta(seconds=wait)
        provider_rows.append(
            {
                "provider": name,
                "period": period,
                **_json_sums(sums),
                "cap_tokens": cap.tokens,
                "cap_estimated": cap.estimated,
                "percent_of_cap": percent,
                "level": level_for_percent(percent),
                "forecast": forecast.isoformat() if forecast else None,
            }
        )
    catalog = config.models if config else pricing_catalog()
    model_rows = sorted(
        (_model_row(p, m, s, priced=m in catalog) for (p, m), s in models.items()),
        key=lambda r: (-r["total_tokens"], r["provider"], r["model"]),
    )
    return {
        "period": period,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "providers": provider_rows,
        "models": model_rows,
        "roles": {name: _json_sums(sums) for name, sums in roles.items()},
        "config_error": config_error,
    }


def _model_row(provider: str, model: str, sums: dict, *, priced: bool) -> dict:
    """A model's figures; a model without a price has no cost (null, shown "unpriced"), never $0."""
    row = {"provider": provider, "model": model, **_json_sums(sums), "priced": priced}
    if not priced:
        row["cost_usd"] = None
    return row


def _json_sums(sums: dict) -> dict:
    return {**sums, "cost_usd": str(sums["cost_usd"].quantize(Decimal("0.000001")))}


def top_runs_and_phases(period: str, *, now: dt.datetime | None = None, limit: int = 5) -> dict:
    """The runs and phases that used the most tokens in the window (whole hours of it)."""
    end = now or clock.now()
    start = end - PERIODS[period]
    rows = RunUsageBucket.objects.filter(start__gte=_floor(start, HOUR), start__lte=end)
    runs = (
        rows.values("run_id")
        .annotate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"), calls=Sum("calls"))
        .order_by("-tokens", "run_id")[:limit]
    )
    phases = (
        rows.exclude(phase_id="")
        .values("run_id", "phase_id")
        .annotate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"), calls=Sum("calls"))
        .order_by("-tokens", "run_id", "phase_id")[:limit]
    )
    return {"runs": list(runs), "phases": list(phases)}


def usage_by_sender(period: str, *, now: dt.datetime | None = None, limit: int = 8) -> list[dict]:
    """Tokens, cost and calls per sender (an API key's name, a person, or blank) in the window's whole hours."""
    end = now or clock.now()
    start = end - PERIODS[period]
    rows = (
        KeyUsageBucket.objects.filter(start__gte=_floor(start, HOUR), start__lte=end)
        .values("sent_by")
        .annotate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"), calls=Sum("calls"))
        .order_by("-tokens", "sent_by")
    )
    return list(rows[:limit])


def daily_tokens_by_provider(*, days: int = 30, now: dt.datetime | None = None) -> tuple[list, dict]:
    """Tokens per UTC day per provider over the last `days` days, today included."""
    end = now or clock.now()
    first = _floor(end, DAY) - (days - 1) * DAY
    dates = [first + i * DAY for i in range(days)]
    series: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    rows = (
        UsageBucket.objects.filter(size=UsageBucket.DAY, start__gte=first, start__lte=end)
        .values("provider", "start")
        .annotate(tokens=Sum("total_tokens"))
        .order_by()
    )
    for row in rows:
        index = (row["start"] - first) // DAY
        if 0 <= index < days:
            series[row["provider"]][index] += row["tokens"]
    return dates, dict(sorted(series.items()))


def raw_window_filter(period: str, *, now: dt.datetime | None = None) -> Q:
    end = now or clock.now()
    return Q(created_at__gt=end - PERIODS[period], created_at__lte=end)


LAST_EVENT = PreparedQuery(lambda: LlmUsageEvent.objects.order_by("-id").values_list("id")[:1])


def usage_version() -> str:
    """Changes whenever the usage panel's figures may have: a new event, another models.yaml, a new minute.

    One index read. Windows roll, so the minute stands for events leaving them; a re-pricing or a
    prune shows within that minute too.
    """
    row = LAST_EVENT.first_row()
    last = row[0] if row else 0
    return f"{last}.{config_stamp()}.{int(clock.now().timestamp()) // 60}"


def demo_summary() -> dict | None:
    """What the demo loaded (kept out of every figure above it), or None when there is no demo data."""
    summary = LlmUsageEvent.objects.filter(is_demo=True).aggregate(
        calls=Count("id"), tokens=Sum("total_tokens", default=0), cost=Sum("cost_usd", default=Decimal(0))
    )
    if summary["calls"] or Run.objects.filter(is_demo=True).exists():
        return summary
    return None


def run_models(run_id: str) -> list[tuple[str, int]]:
    """The models a run's recorded calls used, with their tokens, most used first."""
    return list(
        LlmUsageEvent.objects.filter(run_id=run_id)
        .values_list("model")
        .annotate(tokens=Sum("total_tokens"))
        .order_by("-tokens", "model")
    )


def run_usage_by_phase_and_model(run_id: str) -> list[dict]:
    """A run's recorded calls grouped by phase and model, with the router's latest decision for each."""
    rows = list(
        LlmUsageEvent.objects.filter(run_id=run_id)
        .values("phase_id", "provider", "model")
        .annotate(calls=Count("id"), tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
        .order_by("phase_id", "-tokens", "model")
    )
    latest: dict[tuple, dict] = {}
    recent = (
        LlmUsageEvent.objects.filter(run_id=run_id, decision__isnull=False)
        .order_by("-created_at", "-id")
        .values_list("phase_id", "model", "decision")[:1000]
    )
    for phase_id, model, decision in recent:
        latest.setdefault((phase_id, model), decision)
    for row in rows:
        row["decision"] = latest.get((row["phase_id"], row["model"]))
    return rows
