import pytest

from routing.quotas import forget_cached_states
from routing.router import QuotaExhausted, RoutingError, select
from routing.services import put_in_cooldown, reset_override, set_override
from tests.conftest import plan
from tests.routing.conftest import ROUTING
from tests.usage.conftest import event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db


def use(provider, model, tokens):
    record_usage_events(
        [event(provider=provider, model=model, prompt_tokens=tokens, completion_tokens=0)], atomic_batch=True
    )
    forget_cached_states()


def test_complexity_default_applies_without_category(routing):
    decision = select("builder", None, "medium")
    assert (decision.model, decision.provider, decision.source, decision.category) == (
        "gpt-4o",
        "openai",
        "yaml",
        "general",
    )
    assert decision.reasons == ["baseline gpt-4o from complexity_models.medium.builder"]


def test_category_override_beats_the_complexity_default(routing):
    assert select("builder", "docs", "high").model == "gpt-4o-mini"
    assert select("auditor", "docs", "high").model == "claude-opus-4-1"


def test_defaults_apply_when_the_file_names_nothing_else(routing, models_config):
    models_config({**ROUTING, "complexity_models": {}})
    assert select("builder", None, "low").model == "gpt-4.1"


def test_run_override_beats_global_beats_yaml(routing, api):
    api.start(plan())
    set_override(scope="global", role="builder", category="", complexity="", model="gpt-4.1", via="test")
    assert select("builder", "docs", "low", run="run-1").source == "global override"
    set_override(scope="run", run_id="run-1", role="builder", category="docs", complexity="", model="o3", via="test")
    decision = select("builder", "docs", "low", run="run-1")
    assert (decision.model, decision.source) == ("o3", "run override")
    assert select("builder", "docs", "low", run="other-run").model == "gpt-4.1"
    reset_override(scope="run", run_id="run-1", role="builder", category="docs", complexity="", via="test")
    assert select("builder", "docs", "low", run="run-1").model == "gpt-4.1"


def test_the_most_specific_override_of_a_scope_wins(routing):
    for category, complexity, model in (
        ("", "", "o3"),
        ("", "high", "o4-mini"),
        ("tests", "", "gpt-4.1"),
        ("tests", "high", "gpt-5"),
    ):
        set_override(scope="global", role="auditor", category=category, complexity=complexity, model=model, via="test")
    assert select("auditor", "tests", "high").model == "gpt-5"
    assert select("auditor", "tests", "low").model == "gpt-4.1"
    assert select("auditor", "docs", "high").model == "o4-mini"
    assert select("auditor", "docs", "low").model == "o3"


def test_general_override_means_a_phase_without_special_category(routing):
    set_override(scope="global", role="builder", category="general", complexity="", model="o3", via="test")
    assert select("builder", None, "medium").model == "o3"
    assert select("builder", "docs", "medium").model == "gpt-4o-mini"


def test_under_the_soft_limit_nothing_changes(routing):
    use("openai", "gpt-4o", 800)
    decision = select("builder", None, "medium")
    assert decision.model == "gpt-4o" and decision.warnings == []
    assert decision.quota["openai"] == {"day": {"used": 800, "cap": 1000}}


def test_past_the_soft_limit_the_chain_is_walked_in_order(routing):
    use("openai", "gpt-4o", 801)
    decision = select("builder", None, "medium")
    assert decision.model == "gemini-2.5-flash" and decision.provider == "google"
    assert "fell back to gemini-2.5-flash" in decision.reasons[-1]


def test_a_first_fallback_itself_over_quota_is_skipped(routing):
    use("openai", "gpt-4o", 801)
    use("anthropic", "claude-haiku-4-5", 501)
    decision = select("builder", "docs", "medium")
    # docs: gpt-4o-mini (openai, over) → claude-haiku-4-5 (anthropic, over) → gemini-2.5-flash
    assert decision.model == "gemini-2.5-flash"


def test_when_every_provider_is_past_its_soft_limit_the_one_with_most_room_wins(routing):
    use("openai", "gpt-4o", 850)  # 85% of the daily cap
    use("google", "gemini-2.5-flash", 950)  # 95%
    use("anthropic", "claude-haiku-4-5", 600)  # 60%
    decision = select("builder", "docs", "medium")
    assert decision.provider == "anthropic"
    assert decision.warnings == ["every provider in the chain is over its soft limit; anthropic has the most room"]


def test_when_every_candidate_is_exhausted_the_call_is_refused(routing):
    use("openai", "gpt-4o", 1000)
    use("google", "gemini-2.5-flash", 1000)
    use("anthropic", "claude-haiku-4-5", 1000)
    with pytest.raises(QuotaExhausted) as refused:
        select("builder", "docs", "medium")
    assert (refused.value.provider, refused.value.window, refused.value.used, refused.value.cap) == (
        "openai",
        "day",
        1000,
        1000,
    )


def test_a_critical_category_keeps_its_model_past_the_soft_limit(routing):
    use("anthropic", "claude-opus-4-1", 700)
    decision = select("builder", "security_auth_change", "low")
    assert decision.model == "claude-opus-4-1"
    assert "over its soft limit" in decision.warnings[0]


def test_a_critical_category_fails_fast_when_its_provider_is_exhausted(routing):
    use("anthropic", "claude-opus-4-1", 1000)
    with pytest.raises(QuotaExhausted, match="anthropic has used 1,000 of its weekly cap of 1,000 tokens"):
        select("auditor", "security_auth_change", "medium")


def test_an_override_is_kept_under_quota_pressure_with_a_warning(routing):
    set_override(scope="global", role="builder", category="", complexity="", model="gpt-4o", via="test")
    use("openai", "gpt-4o", 1200)
    decision = select("builder", "docs", "low")
    assert decision.model == "gpt-4o" and decision.source == "global override"
    assert "over its cap" in decision.warnings[0]


def test_a_cooling_provider_is_skipped_by_non_critical_calls(routing):
    put_in_cooldown(provider="openai", reason="HTTP 429", retry_after=60)
    decision = select("builder", None, "medium")
    assert decision.provider == "google" and "cooling down" in decision.reasons[-1]


def test_quota_routing_disabled_means_the_baseline_always(routing, models_config):
    models_config({**ROUTING, "quota_routing": {"enabled": False}})
    use("openai", "gpt-4o", 5000)
    assert select("builder", None, "medium").model == "gpt-4o"


def test_estimated_caps_do_not_route(routing):
    # anthropic has only a weekly cap: no daily estimate applies to routing.
    use("anthropic", "claude-sonnet-4-5", 400)
    assert select("builder", None, "high").model == "claude-sonnet-4-5"


@pytest.mark.parametrize(("role", "complexity"), [("planner", "low"), ("builder", "extreme")])
def test_unknown_role_or_complexity_is_refused(routing, role, complexity):
    with pytest.raises(RoutingError):
        select(role, None, complexity)


def test_an_agent_role_uses_what_models_yaml_names_for_it(models_config):
    models_config(
        {
            "complexity_models": {"medium": {"builder": "gpt-4o", "agent:planner": "gpt-4.1-mini"}},
            "category_models": {"docs": {"agent:writer_model_override": "gpt-4o-mini"}},
        }
    )
    assert select("agent:planner", None, "medium").model == "gpt-4.1-mini"
    assert select("agent:writer", "docs", "low").model == "gpt-4o-mini"
    # Named nowhere: the original router's default for auxiliary agents.
    assert select("agent:other", None, "medium").model == "claude-sonnet-4-5"


def test_an_unknown_role_is_still_refused(models_config):
    with pytest.raises(RoutingError, match="unknown role 'reviewer'"):
        select("reviewer", None, "medium")


def test_select_makes_no_query_once_overrides_and_quotas_are_cached(routing, django_assert_num_queries):
    select("builder", "docs", "low")
    with django_assert_num_queries(0):
        for _ in range(100):
            select("builder", "docs", "low", run="run-1")


def test_an_override_change_is_seen_at_once_by_this_process(routing, api):
    api.start(plan())
    assert select("builder", "docs", "low").model == "gpt-4o-mini"
    set_override(scope="global", role="builder", category="docs", complexity="low", model="gpt-4.1", via="api")
    assert select("builder", "docs", "low").model == "gpt-4.1"
    set_override(scope="run", run_id="run-1", role="builder", category="docs", complexity="low", model="o3", via="api")
    assert select("builder", "docs", "low", run="run-1").model == "o3"
    reset_override(scope="global", role="builder", category="docs", complexity="low", via="api")
    assert select("builder", "docs", "low").model == "gpt-4o-mini"
