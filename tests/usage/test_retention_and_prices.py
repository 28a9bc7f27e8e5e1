import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from autopack_site import clock
from autopack_site.errors import Conflict
from runs.models import Run
from tests.usage.conftest import NOW, event
from usage.aggregation import daily_tokens_by_provider, usage_summary
from usage.models import LlmUsageEvent, UsageBucket
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db


def seed_history(days=120):
    items = [event(created_at=(NOW - dt.timedelta(days=d, minutes=7)).isoformat()) for d in range(days)]
    with clock.frozen_at(NOW):
        record_usage_events(items, atomic_batch=True)


def test_prune_deletes_old_events_and_leaves_every_window_unchanged(models_config):
    seed_history()
    with clock.frozen_at(NOW):
        before = {p: usage_summary(p) for p in ("day", "week", "month")}
        chart = daily_tokens_by_provider()
        out = io.StringIO()
        call_command("prune_usage", "--older-than=90d", stdout=out)
        assert {p: usage_summary(p) for p in ("day", "week", "month")} == before
        assert daily_tokens_by_provider() == chart
    assert "Deleted 30 usage events" in out.getvalue()
    assert LlmUsageEvent.objects.count() == 90
    assert UsageBucket.objects.filter(size="day").count() == 120


@pytest.mark.parametrize("age", ["7d", "30d", "ninety", "90"])
def test_prune_refuses_ages_that_would_change_the_dashboard_or_make_no_sense(models_config, age):
    with pytest.raises(CommandError):
        call_command("prune_usage", f"--older-than={age}")


def test_reprice_recomputes_costs_and_buckets_and_reports_per_model(models_config):
    with clock.frozen_at(NOW):
        record_usage_events([event(prompt_tokens=1_000_000, completion_tokens=0)], atomic_batch=True)
    assert LlmUsageEvent.objects.get().cost_usd == Decimal("2.5")
    models_config({"models": {"gpt-4o": {"provider": "openai", "input_per_mtok": 3, "output_per_mtok": 12}}})

    dry = io.StringIO()
    call_command("reprice_usage", "--since=2026-01-01", "--dry-run", stdout=dry)
    assert "gpt-4o: 1 events would change, $2.500000 → $3.000000" in dry.getvalue()
    assert LlmUsageEvent.objects.get().cost_usd == Decimal("2.5")

    out = io.StringIO()
    call_command("reprice_usage", "--since=2026-01-01", stdout=out)
    assert "1 events changed" in out.getvalue()
    assert LlmUsageEvent.objects.get().cost_usd == Decimal("3")
    assert {b.cost_usd for b in UsageBucket.objects.all()} == {Decimal("3")}
    with clock.frozen_at(NOW):
        assert usage_summary("week")["providers"][0]["cost_usd"] == "3.000000"


def test_reprice_leaves_events_before_the_date_alone(models_config):
    with clock.frozen_at(NOW):
        record_usage_events([event(created_at="2026-02-01T00:00:00Z")], atomic_batch=True)
    models_config({"models": {"gpt-4o": {"provider": "openai", "input_per_mtok": 100, "output_per_mtok": 100}}})
    out = io.StringIO()
    call_command("reprice_usage", "--since=2026-03-01", stdout=out)
    assert "every cost already matches" in out.getvalue()
    assert LlmUsageEvent.objects.get().cost_usd == Decimal("0.00075")


def totals():
    hours = UsageBucket.objects.filter(size="hour").aggregate(t=Sum("total_tokens"), c=Sum("calls"))
    return (
        LlmUsageEvent.objects.count(),
        hours["t"],
        hours["c"],
        list(Run.objects.values_list("tokens_used", flat=True)),
    )


def test_a_replay_after_pruning_is_still_a_duplicate_and_other_figures_a_conflict(models_config):
    old = (NOW - dt.timedelta(days=100)).isoformat()
    with clock.frozen_at(NOW):
        record_usage_events([event(request_id="late", created_at=old)], atomic_batch=True)
        call_command("prune_usage", "--older-than=90d", stdout=io.StringIO(), stderr=io.StringIO())
        assert LlmUsageEvent.objects.count() == 0
        before = totals()
        again = record_usage_events([event(request_id="late", created_at=old)], atomic_batch=True)
        assert (again.imported, again.duplicates) == (0, 1)
        with pytest.raises(Conflict):
            record_usage_events([event(request_id="late", created_at=old, prompt_tokens=7)], atomic_batch=True)
    assert totals() == before


def test_a_pruned_file_line_without_request_id_is_not_counted_again(tmp_path, models_config):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(event(created_at=(NOW - dt.timedelta(days=100)).isoformat())) + "\n")
    with clock.frozen_at(NOW):
        call_command("record_usage", f"--file={path}", stdout=io.StringIO(), stderr=io.StringIO())
        call_command("prune_usage", "--older-than=90d", stdout=io.StringIO(), stderr=io.StringIO())
        out = io.StringIO()
        call_command("record_usage", f"--file={path}", stdout=out, stderr=io.StringIO())
    assert "Imported 0, duplicates skipped 1" in out.getvalue()
    assert UsageBucket.objects.filter(size="day").aggregate(s=Sum("calls"))["s"] == 1
