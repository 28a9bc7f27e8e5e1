import datetime as dt
from decimal import Decimal

import pytest

from autopack_site.errors import Conflict, InvalidInput
from runs.models import Phase, Run, Tier
from tests.conftest import plan
from tests.usage.conftest import event
from usage.models import KeyUsageBucket, LlmUsageEvent, RunUsageBucket, UsageBucket
from usage.recording import record_usage, record_usage_events

pytestmark = pytest.mark.django_db


def test_an_event_is_stored_with_exact_figures_and_its_price(models_config, frozen_now):
    result = record_usage(**event(prompt_tokens=1000, completion_tokens=500, cached_prompt_tokens=200, latency_ms=812))
    assert (result.imported, result.duplicates) == (1, 0)
    stored = LlmUsageEvent.objects.get()
    assert (stored.prompt_tokens, stored.completion_tokens, stored.total_tokens) == (1000, 500, 1500)
    assert stored.cached_prompt_tokens == 200 and stored.latency_ms == 812 and stored.status == "ok"
    # 800 uncached × $2.50 + 200 cached × $1.25 + 500 × $10.00, per million
    assert stored.cost_usd == Decimal("0.00725")
    assert stored.created_at == frozen_now


def test_a_total_only_report_counts_everywhere_without_a_split(models_config):
    record_usage(provider="google", model="gemini-2.5-flash", role="builder", total_tokens=900)
    stored = LlmUsageEvent.objects.get()
    assert (stored.prompt_tokens, stored.completion_tokens, stored.total_tokens) == (None, None, 900)
    assert stored.cost_usd is None
    assert UsageBucket.objects.filter(size="hour").get().total_tokens == 900


def test_anthropic_shaped_report_is_normalised_with_cache_reads_inside_prompt(models_config):
    record_usage(
        model="claude-sonnet-4-5",
        role="auditor",
        input_tokens=100,
        cache_read_input_tokens=400,
        cache_creation_input_tokens=50,
        output_tokens=20,
    )
    stored = LlmUsageEvent.objects.get()
    assert stored.provider == "anthropic"
    assert (stored.prompt_tokens, stored.cached_prompt_tokens, stored.completion_tokens) == (550, 400, 20)
    assert stored.total_tokens == 570


def test_model_outside_the_catalog_is_recorded_unpriced(models_config):
    record_usage(**event(provider="local", model="my-llama"))
    assert LlmUsageEvent.objects.get().cost_usd is None


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"cached_prompt_tokens": 101}, "cached_prompt_tokens"),
        ({"reasoning_tokens": 51}, "reasoning_tokens"),
        ({"total_tokens": 149}, "total_tokens"),
        ({"role": "planner"}, "role"),
        ({"prompt_tokens": -1}, "prompt_tokens"),
        ({"prompt_tokens": True}, "prompt_tokens"),
        ({"prompt_tokens": None, "completion_tokens": None}, "total_tokens"),
        ({"status": "maybe"}, "status"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2999-01-01T00:00:00Z"}, "created_at"),
        ({"model": ""}, "model"),
        ({"provider": None, "model": "unknown-model"}, "provider"),
    ],
)
def test_invalid_events_are_refused_and_nothing_is_written(models_config, fields, path):
    with pytest.raises(InvalidInput) as refused:
        record_usage(**event(**fields))
    assert path in refused.value.details
    assert not LlmUsageEvent.objects.exists() and not UsageBucket.objects.exists()


def test_replaying_a_request_id_with_the_same_figures_changes_nothing(models_config):
    first = record_usage(**event(request_id="call-1"))
    again = record_usage(**event(request_id="call-1"))
    assert (first.imported, again.imported, again.duplicates) == (1, 0, 1)
    assert LlmUsageEvent.objects.count() == 1
    assert UsageBucket.objects.get(size="hour").calls == 1


def test_same_request_id_with_other_figures_is_a_conflict_never_an_overwrite(models_config):
    record_usage(**event(request_id="call-1"))
    with pytest.raises(Conflict):
        record_usage(**event(request_id="call-1", completion_tokens=51))
    assert LlmUsageEvent.objects.get().completion_tokens == 50


def test_buckets_hold_the_hour_and_the_day_of_each_event(models_config):
    at = dt.datetime(2026, 3, 9, 10, 15, tzinfo=dt.UTC)
    record_usage(**event(created_at=at.isoformat(), run_id="r", phase_id="p"))
    record_usage(**event(created_at=(at + dt.timedelta(minutes=30)).isoformat(), role="auditor"))
    hours = UsageBucket.objects.filter(size="hour")
    assert {b.start for b in hours} == {at.replace(minute=0)}
    assert sum(b.total_tokens for b in hours) == 300
    day = UsageBucket.objects.filter(size="day")
    assert {b.start for b in day} == {at.replace(hour=0, minute=0)} and sum(b.calls for b in day) == 2
    assert RunUsageBucket.objects.get().total_tokens == 150


def test_the_larger_of_reported_and_metered_tokens_counts_and_rolls_up(api, models_config):
    api.start(plan())
    api.move("run-1", "P1", "EXECUTING", tokens_used=100)
    api.move("run-1", "P3", "EXECUTING", tokens_used=500)
    record_usage(**event(run_id="run-1", phase_id="P1"))
    record_usage(**event(run_id="run-1", phase_id="P1", role="auditor"))
    record_usage(**event(run_id="run-1", total_tokens=None, prompt_tokens=10, completion_tokens=5))
    phase = Phase.objects.get(phase_id="P1")
    assert (phase.usage_tokens, phase.tokens_used, phase.reported_tokens) == (300, 300, 100)
    assert Tier.objects.get(tier_id="T1").tokens_used == 300
    run = Run.objects.get()
    # P1's events, P3's reported figure, and the event that names no phase.
    assert run.tokens_used == 300 + 500 + 15
    assert (run.tokens_reported, run.tokens_metered) == (600, 315)
    assert api.status("run-1")["tokens_used"] == 815
    # A later, larger executor report counts: some calls may have bypassed the meter.
    api.move("run-1", "P1", "GATE", tokens_used=5000)
    assert Phase.objects.get(phase_id="P1").tokens_used == 5000


def test_usage_for_an_unknown_run_is_kept(models_config):
    record_usage(**event(run_id="never-started", phase_id="x"))
    assert LlmUsageEvent.objects.get().run_id == "never-started"


def test_usage_of_a_phase_the_run_does_not_have_counts_for_the_run(api, models_config):
    api.start(plan())
    record_usage(**event(run_id="run-1", phase_id="P99"))
    assert Run.objects.get().tokens_used == 150


def test_a_broken_config_does_not_stop_recording(models_config, tmp_path, settings):
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed")
    settings.AUTOPACK_MODELS_CONFIG = str(broken)
    record_usage(**event())
    assert LlmUsageEvent.objects.get().cost_usd == Decimal("0.00075")


def test_an_id_said_to_be_new_but_stored_is_still_a_duplicate(models_config):
    # The call path's own ids are written in one statement, unlooked-up; a clash falls back to the full path.
    first = record_usage_events([event(request_id="call-1:1")], atomic_batch=True, sent_by="agent", new_ids=True)
    again = record_usage_events([event(request_id="call-1:1")], atomic_batch=True, sent_by="agent", new_ids=True)
    assert (first.imported, again.imported, again.duplicates) == (1, 0, 1)
    assert LlmUsageEvent.objects.count() == 1
    assert list(UsageBucket.objects.order_by("size").values_list("size", "calls", "total_tokens")) == [
        ("day", 1, 150),
        ("hour", 1, 150),
    ]
    assert list(KeyUsageBucket.objects.values_list("sent_by", "calls")) == [("agent", 1)]
