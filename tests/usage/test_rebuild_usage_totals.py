import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from autopack_site import clock
from tests.usage.conftest import NOW, event
from usage.models import KeyUsageBucket, RunUsageBucket, UsageBucket
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db


def rebuild(*args) -> str:
    out = io.StringIO()
    call_command("rebuild_usage_totals", *args, stdout=out)
    return out.getvalue()


def all_buckets():
    return (
        sorted(UsageBucket.objects.values_list("size", "start", "model", "total_tokens", "cost_usd", "calls")),
        sorted(RunUsageBucket.objects.values_list("start", "run_id", "phase_id", "total_tokens", "cost_usd", "calls")),
        sorted(KeyUsageBucket.objects.values_list("start", "sent_by", "total_tokens", "cost_usd", "calls")),
    )


def seed(hours=6):
    items = [
        event(request_id=f"e{h}", run_id="r1", phase_id="P1", created_at=(NOW - dt.timedelta(hours=h)).isoformat())
        for h in range(hours)
    ]
    with clock.frozen_at(NOW):
        record_usage_events(items, atomic_batch=True)


def test_rebuild_finds_nothing_to_change_when_buckets_match_their_events(models_config):
    seed()
    before = all_buckets()
    assert "matches its events" in rebuild()
    assert all_buckets() == before


def test_rebuild_reports_each_corrupt_bucket_and_fixes_it(models_config):
    seed()
    good = all_buckets()
    hour = NOW.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    UsageBucket.objects.filter(size="hour", start=hour).update(total_tokens=999, cost_usd=Decimal("42"))
    RunUsageBucket.objects.filter(start=hour - dt.timedelta(hours=1)).delete()
    UsageBucket.objects.create(size="hour", start=hour, provider="openai", model="ghost", role="builder", calls=3)

    dry = rebuild("--dry-run")
    assert f"hour {hour:%Y-%m-%d %H:00} openai gpt-4o builder: stored prompt_tokens 100, completion_tokens 50, " in dry
    assert "total_tokens 999, cost_usd 42" in dry
    assert f"hour {hour:%Y-%m-%d %H:00} openai ghost builder: stored " in dry and "recomputed no row" in dry
    assert f"run {hour - dt.timedelta(hours=1):%Y-%m-%d %H:00} r1 P1: stored no row; recomputed total_tokens 150" in dry
    assert "3 totals from" in dry and "dry run: nothing written" in dry
    assert all_buckets() != good

    assert "3 totals from" in rebuild()
    assert all_buckets() == good
    assert "matches its events" in rebuild()


def test_rebuild_leaves_history_before_the_prune_horizon_untouched(models_config):
    items = [event(created_at=(NOW - dt.timedelta(days=d, minutes=7)).isoformat()) for d in range(120)]
    with clock.frozen_at(NOW):
        record_usage_events(items, atomic_batch=True)
        call_command("prune_usage", "--older-than=90d", stdout=io.StringIO(), stderr=io.StringIO())
        # A late event from before the horizon: its day's bucket also holds the pruned event of that day.
        late = NOW - dt.timedelta(days=95, minutes=1)
        record_usage_events([event(request_id="late", created_at=late.isoformat())], atomic_batch=True)
    # Before the horizon the buckets are the only record; one is changed by hand to show it stays.
    old_day = (NOW - dt.timedelta(days=100)).replace(hour=0, minute=0, second=0, microsecond=0)
    UsageBucket.objects.filter(size="day", start=old_day).update(calls=7)
    before = all_buckets()

    out = rebuild()
    # The prune horizon (90 days ago at 15:30) falls inside an hour: the next one is the first rebuilt.
    first = (NOW - dt.timedelta(days=90)).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    assert f"Every total from {first:%Y-%m-%d %H:00} UTC matches its events." in out
    assert all_buckets() == before
    assert UsageBucket.objects.filter(size="day").count() == 120


def test_rebuild_restores_usage_by_key(models_config):
    seed()
    before = all_buckets()
    KeyUsageBucket.objects.filter(start=NOW.replace(minute=0, second=0, microsecond=0)).update(total_tokens=1)
    KeyUsageBucket.objects.order_by("start").first().delete()
    rebuild()
    assert all_buckets() == before
