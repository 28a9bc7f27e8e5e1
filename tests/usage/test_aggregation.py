import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from autopack_site import clock
from tests.usage.conftest import NOW, event
from usage.aggregation import PERIODS, usage_summary, window_pieces
from usage.models import LlmUsageEvent
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

PROVIDERS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("local", "x"))
ROLES = ("builder", "auditor", "agent:planner")


def seed(now, count=400, seed_value=7):
    """Events spread over 35 days before `now`, plus events right on and around each window's edges."""
    rng = random.Random(seed_value)
    moments = [now - dt.timedelta(seconds=rng.uniform(0, 35 * 86400)) for _ in range(count)]
    for delta in PERIODS.values():
        start = now - delta
        micro = dt.timedelta(microseconds=1)
        moments += [start, start + micro, start - micro, now, now - micro]
        moments += [start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=h) for h in (0, 1, 2)]
    moments += [now.replace(minute=0, second=0, microsecond=0), now.replace(hour=0, minute=0, second=0, microsecond=0)]
    items = []
    for i, moment in enumerate(moments):
        provider, model = PROVIDERS[i % len(PROVIDERS)]
        fields = {"provider": provider, "model": model, "role": ROLES[i % 3], "created_at": moment.isoformat()}
        if i % 5 == 0:
            fields["total_tokens"] = rng.randint(1, 10_000)
        else:
            fields |= {"prompt_tokens": rng.randint(0, 9_000), "completion_tokens": rng.randint(0, 3_000)}
        items.append(fields)
    with clock.frozen_at(now):
        result = record_usage_events(items, atomic_batch=True)
    assert result.imported == len(items)


def raw_sums(start, end, group):
    return {
        tuple(row[k] for k in group): row
        for row in LlmUsageEvent.objects.filter(created_at__gt=start, created_at__lte=end)
        .values(*group)
        .annotate(
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            total=Sum("total_tokens"),
            cost=Sum("cost_usd"),
            calls=Count("id"),
        )
    }


@pytest.mark.parametrize("period", ["day", "week", "month"])
@pytest.mark.parametrize(
    "now",
    [NOW, NOW.replace(minute=0, second=0, microsecond=0), NOW.replace(hour=0, minute=0, second=0, microsecond=0)],
    ids=["ragged", "on-the-hour", "at-midnight"],
)
def test_summary_equals_a_raw_sum_to_the_token_at_the_window_edges(models_config, period, now):
    seed(now)
    summary = usage_summary(period, now=now)
    start = now - PERIODS[period]
    expected = raw_sums(start, now, ("provider",))
    got = {p["provider"]: p for p in summary["providers"] if p["calls"]}
    assert set(got) == {k[0] for k in expected}
    for (provider,), row in expected.items():
        mine = got[provider]
        assert mine["total_tokens"] == row["total"]
        assert mine["prompt_tokens"] == (row["prompt"] or 0)
        assert mine["completion_tokens"] == (row["completion"] or 0)
        assert mine["calls"] == row["calls"]
        assert abs(Decimal(mine["cost_usd"]) - Decimal(row["cost"] or 0)) < Decimal("0.00001")
    models = raw_sums(start, now, ("provider", "model"))
    assert {(m["provider"], m["model"]): m["total_tokens"] for m in summary["models"]} == {
        k: v["total"] for k, v in models.items()
    }
    roles = raw_sums(start, now, ("role",))
    core = sum(v["total"] for (role,), v in roles.items() if role in ("builder", "auditor"))
    assert summary["roles"]["core"]["total_tokens"] == core
    assert summary["roles"]["aux"]["total_tokens"] == roles.get(("agent:planner",), {"total": 0})["total"]


def test_models_are_listed_by_total_descending(models_config, frozen_now):
    record_usage_events([event(model="gpt-4o-mini", prompt_tokens=5), event(prompt_tokens=500)], atomic_batch=True)
    assert [m["model"] for m in usage_summary("week")["models"]] == ["gpt-4o", "gpt-4o-mini"]


def test_window_pieces_cover_the_window_without_overlap():
    start = dt.datetime(2026, 3, 3, 15, 30, 12, tzinfo=dt.UTC)
    end = dt.datetime(2026, 3, 10, 15, 30, 12, tzinfo=dt.UTC)
    pieces = list(window_pieces(start, end))
    assert pieces[0] == ("head", start, dt.datetime(2026, 3, 3, 16, tzinfo=dt.UTC))
    assert pieces[-1] == ("tail", dt.datetime(2026, 3, 10, 15, tzinfo=dt.UTC), end)
    kinds = [p[0] for p in pieces]
    assert kinds == ["head", "hour", "day", "hour", "tail"]
    for (_, _, hi), (_, lo, _) in zip(pieces, pieces[1:], strict=False):
        assert hi == lo


def summary_for(provider, period):
    return next(p for p in usage_summary(period)["providers"] if p["provider"] == provider)


@pytest.mark.parametrize(
    ("tokens", "level"),
    [(800, "ok"), (801, "warning"), (900, "warning"), (901, "danger"), (999, "danger"), (1000, "exceeded")],
)
def test_levels_warn_above_80_and_90_and_mark_the_cap_reached(models_config, frozen_now, tokens, level):
    record_usage_events([event(prompt_tokens=tokens, completion_tokens=0)], atomic_batch=True)
    row = summary_for("openai", "day")
    assert (row["cap_tokens"], row["level"]) == (1000, level)
    assert row["percent_of_cap"] == round(tokens / 10, 1)


def test_a_provider_without_a_cap_shows_no_cap_and_no_percent(models_config, frozen_now):
    record_usage_events([event(provider="local", model="llama")], atomic_batch=True)
    row = summary_for("local", "week")
    assert (row["cap_tokens"], row["percent_of_cap"], row["level"], row["forecast"]) == (None, None, "ok", None)


def test_missing_monthly_cap_is_estimated_from_the_weekly_cap(models_config, frozen_now):
    row = summary_for("anthropic", "month")
    assert (row["cap_tokens"], row["cap_estimated"]) == (30000, True)
    assert summary_for("openai", "month")["cap_estimated"] is False
    assert summary_for("anthropic", "week")["cap_tokens"] == 7000


def test_forecast_extrapolates_the_windows_burn_rate(models_config, frozen_now):
    record_usage_events([event(prompt_tokens=250, completion_tokens=0)], atomic_batch=True)
    row = summary_for("openai", "day")
    # 250 tokens in 24 h: the other 750 take 72 h more.
    assert dt.datetime.fromisoformat(row["forecast"]) == frozen_now + dt.timedelta(hours=72)


def test_endpoint_defaults_to_week_and_refuses_an_unknown_period(client, models_config):
    assert client.get("/dashboard/usage").json()["period"] == "week"
    response = client.get("/dashboard/usage", {"period": "year"})
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid period", "details": {"period": "must be day, week or month"}}


def test_endpoint_reports_a_broken_config_but_still_answers(client, tmp_path, settings):
    broken = tmp_path / "m.yaml"
    broken.write_text("provider_quotas: {openai: {soft_limit_ratio: 3}}")
    settings.AUTOPACK_MODELS_CONFIG = str(broken)
    body = client.get("/dashboard/usage").json()
    assert "provider_quotas.openai.soft_limit_ratio" in body["config_error"]


def test_a_trickle_of_usage_forecasts_nothing_rather_than_centuries(client, models_config, frozen_now):
    record_usage_events([event(prompt_tokens=1, completion_tokens=0)], atomic_batch=True)
    row = summary_for("openai", "month")
    assert row["forecast"] is None and row["percent_of_cap"] == 0.0
    assert client.get("/dashboard/").status_code == 200
