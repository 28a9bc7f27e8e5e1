"""Demo data is labelled as such, never touches a real figure, and is removed whole."""

import pytest
from django.core.management import call_command

from routing.config import get_config
from routing.quotas import forget_cached_states, provider_states
from routing.router import select
from runs.models import Phase, Run, UnclaimedUsage
from tests.conftest import plan
from tests.usage.conftest import event
from usage.aggregation import usage_summary
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "Origin": "http://testserver"}
# Small caps the demo's millions of tokens would blow through if they counted.
QUOTAS = {
    "complexity_models": {"medium": {"builder": "gpt-4o", "auditor": "gpt-4o"}},
    "provider_quotas": {
        "openai": {"daily_token_cap": 100_000, "soft_limit_ratio": 0.8},
        "anthropic": {"weekly_token_cap": 100_000, "soft_limit_ratio": 0.8},
    },
    "quota_routing": {"enabled": True},
    "fallback_strategy": {"default_fallbacks": ["gemini-2.5-flash"]},
}


def real_figures() -> dict:
    """Every real figure the dashboard shows or routes by."""
    summary = usage_summary("month")
    return {
        "providers": [(p["provider"], p["total_tokens"], p["cost_usd"], p["forecast"]) for p in summary["providers"]],
        "models": [(m["model"], m["total_tokens"]) for m in summary["models"]],
        "buckets": sorted(
            UsageBucket.objects.values_list("size", "start", "provider", "model", "role", "total_tokens")
        ),
        "events": sorted(LlmUsageEvent.objects.filter(is_demo=False).values_list("request_id", "total_tokens")),
        "runs": sorted(Run.objects.filter(is_demo=False).values_list("run_id", "tokens_used", "version")),
    }


@pytest.fixture
def real_usage(api, models_config):
    models_config(QUOTAS)
    api.start(plan("real-1"))
    api.post("/api/usage", event(request_id="real-a", run_id="real-1", phase_id="P1", prompt_tokens=20_000))
    api.post("/api/usage", event(request_id="real-b", provider="anthropic", model="claude-sonnet-4-5"))
    forget_cached_states()


def test_the_demo_counts_in_no_quota_routing_decision_forecast_or_total(real_usage):
    before = real_figures()
    states_before = {name: state.figures() for name, state in provider_states(get_config()).items()}
    call_command("demo")
    forget_cached_states()
    assert LlmUsageEvent.objects.filter(is_demo=True).count() > 50
    assert real_figures() == before
    assert {name: state.figures() for name, state in provider_states(get_config()).items()} == states_before
    decision = select("builder", "general", "medium")
    assert (decision.model, decision.warnings) == ("gpt-4o", [])


def test_demo_calls_carry_routing_decisions_like_real_ones(real_usage):
    call_command("demo")
    calls = LlmUsageEvent.objects.filter(is_demo=True).exclude(run_id="")
    assert calls.exists()
    assert not calls.filter(decision__isnull=True).exists()
    decision = calls.filter(role="auditor").first().decision
    assert decision["used"] and decision["asked_for"] and decision["reasons"]


def test_demo_remove_deletes_all_of_it_and_leaves_every_real_figure_as_it_was(real_usage, client):
    before = real_figures()
    call_command("demo")
    client.post("/dashboard/forms/note", {"note": "demo note", "run_id": "demo-run-001"}, headers=HTMX)
    call_command("demo", "--remove")
    assert not Run.objects.filter(is_demo=True).exists()
    assert not LlmUsageEvent.objects.filter(is_demo=True).exists()
    assert not RunUsageBucket.objects.filter(run_id__startswith="demo-").exists()
    assert not UnclaimedUsage.objects.exists()
    assert not Phase.objects.filter(run__run_id="demo-run-001").exists()
    assert real_figures() == before


def test_the_dashboard_labels_demo_data_and_offers_to_remove_it(real_usage, client):
    call_command("demo")
    page = client.get("/dashboard/?run=demo-run-001").content.decode()
    assert "Demo data</span> The demo run and" in page
    assert "Remove demo data…" in page and 'hx-post="/dashboard/forms/remove-demo"' in page
    assert "demo-run-001 — PHASE_EXECUTION (demo data)" in page
    run_page = client.get("/dashboard/runs/demo-run-001/").content.decode()
    assert '<span class="badge demo">Demo data</span>' in run_page
    runs_page = client.get("/dashboard/runs/").content.decode()
    assert '<span class="badge demo">Demo data</span>' in runs_page
    usage_page = client.get("/dashboard/usage/").content.decode()
    assert "Demo data is left out of every figure here" in usage_page
    assert client.get("/runs/demo-run-001").json()["is_demo"] is True


def test_the_dashboards_remove_button_removes_it_and_reloads_the_page(real_usage, client):
    before = real_figures()
    call_command("demo")
    response = client.post("/dashboard/forms/remove-demo", headers=HTMX)
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert not Run.objects.filter(is_demo=True).exists()
    assert real_figures() == before
    assert "Remove demo data" not in client.get("/dashboard/").content.decode()


def test_removing_demo_data_from_another_site_is_refused(real_usage, client):
    call_command("demo")
    response = client.post(
        "/dashboard/forms/remove-demo", headers={"HX-Request": "true", "Origin": "https://evil.example"}
    )
    assert response["X-Refused"] == "true"
    assert Run.objects.filter(is_demo=True).exists()


def test_removing_demo_data_over_json(real_usage, api):
    call_command("demo")
    response = api.post("/dashboard/demo/remove", {})
    assert response.status_code == 200
    assert response.json() == {
        "removed_runs": 1,
        "removed_calls": LlmUsageEvent.objects.count() and response.json()["removed_calls"],
    }
    assert response.json()["removed_calls"] > 50


def test_usage_cannot_be_marked_as_demo_from_outside(api, models_config):
    api.post("/api/usage", event(request_id="x", is_demo=True))
    assert LlmUsageEvent.objects.get().is_demo is False
