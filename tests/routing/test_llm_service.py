import pytest

from routing.llm_service import LlmError
from routing.models import ProviderCooldown
from routing.quotas import forget_cached_states
from routing.router import QuotaExhausted
from routing.services import set_override
from runs.models import Phase
from tests.conftest import plan
from tests.routing.fake_provider import FakeProvider
from tests.usage.conftest import event
from usage.models import LlmUsageEvent
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "hello"}]


def test_a_call_is_routed_sent_and_recorded_token_for_token(service, provider, api):
    api.start(plan())
    provider.default_usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 500,
        "total_tokens": 2500,
        "prompt_tokens_details": {"cached_tokens": 1500},
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    result = service.complete("builder", None, "medium", MESSAGES, run_id="run-1", phase_id="P1")
    assert (result.text, result.model, result.provider, result.tokens_used) == ("ok", "gpt-4o", "openai", 2500)
    assert provider.requests[0]["auth"] == "Bearer sk-test-openai"
    stored = LlmUsageEvent.objects.get()
    assert (stored.prompt_tokens, stored.completion_tokens, stored.cached_prompt_tokens, stored.reasoning_tokens) == (
        2000,
        500,
        1500,
        200,
    )
    assert stored.request_id == result.request_id and stored.latency_ms is not None
    assert stored.decision["asked_for"] == "gpt-4o" and stored.decision["used"] == "gpt-4o"
    # 500 uncached × $2.50 + 1500 cached × $1.25 + 500 × $10, per million
    assert str(stored.cost_usd.normalize()) == "0.008125"
    assert Phase.objects.get(phase_id="P1").tokens_used == 2500


def test_a_429_with_retry_after_cools_the_provider_and_falls_back(service, provider):
    provider.script("gpt-4o", (429, {"error": {"message": "slow down"}}, {"Retry-After": "42"}, 0))
    result = service.complete("builder", "general", "medium", MESSAGES)
    assert provider.models_called() == ["gpt-4o", "claude-haiku-4-5"]
    assert result.model == "claude-haiku-4-5" and result.failed_attempts == ["gpt-4o: HTTP 429"]
    cooldown = ProviderCooldown.objects.get(provider="openai")
    assert 41 <= (cooldown.until - cooldown.updated_at).total_seconds() <= 42
    assert "429" in cooldown.reason
    event_ = LlmUsageEvent.objects.get()
    assert event_.model == "claude-haiku-4-5" and event_.decision["failed_attempts"] == ["gpt-4o: HTTP 429"]


def test_a_500_cools_down_exponentially_and_the_chain_goes_on(service, provider):
    provider.script("gpt-4o", (500, {"error": {"message": "boom"}}, {}, 0))
    provider.script("claude-haiku-4-5", (503, {"error": {"message": "overloaded"}}, {}, 0))
    result = service.complete("builder", None, "medium", MESSAGES)
    assert result.model == "gemini-2.5-flash"
    assert set(ProviderCooldown.objects.values_list("provider", flat=True)) == {"openai", "anthropic"}
    assert ProviderCooldown.objects.get(provider="openai").reason == "HTTP 500"


def test_a_slow_answer_times_out_and_moves_down_the_chain(service, provider):
    provider.script("gpt-4o", (200, None, {}, 3))
    result = service.complete("builder", None, "medium", MESSAGES)
    assert result.model == "claude-haiku-4-5"
    assert "timed out" in ProviderCooldown.objects.get(provider="openai").reason


def test_other_4xx_is_raised_with_a_clear_message(service, provider):
    provider.script("gpt-4o", (400, {"error": {"message": "context too long"}}, {}, 0))
    with pytest.raises(LlmError, match="openai refused gpt-4o: HTTP 400 context too long"):
        service.complete("builder", None, "medium", MESSAGES)
    assert provider.models_called() == ["gpt-4o"] and not ProviderCooldown.objects.exists()


def test_usage_reported_on_a_failed_call_is_recorded(service, provider):
    body = {"error": {"message": "upstream died"}, "usage": {"prompt_tokens": 800, "completion_tokens": 0}}
    provider.script("gpt-4o", (500, body, {}, 0))
    service.complete("builder", None, "medium", MESSAGES)
    failed = LlmUsageEvent.objects.get(model="gpt-4o")
    assert (failed.status, failed.prompt_tokens, failed.total_tokens) == ("error", 800, 800)
    assert LlmUsageEvent.objects.filter(status="ok").count() == 1


def test_a_critical_category_never_falls_back(service, provider):
    provider.script("claude-sonnet-4-5", (529, {"error": {"message": "overloaded"}}, {}, 0))
    with pytest.raises(LlmError, match="never downgraded"):
        service.complete("builder", "security_auth_change", "low", MESSAGES)
    assert provider.models_called() == ["claude-sonnet-4-5"]
    assert ProviderCooldown.objects.filter(provider="anthropic").exists()


def test_a_critical_category_fails_fast_on_an_exhausted_provider(service, provider):
    record_usage_events(
        [event(provider="anthropic", model="claude-sonnet-4-5", prompt_tokens=100_000)], atomic_batch=True
    )
    forget_cached_states()
    with pytest.raises(QuotaExhausted, match="anthropic"):
        service.complete("builder", "security_auth_change", "low", MESSAGES)
    assert provider.requests == []


def test_a_dashboard_override_changes_what_is_called(service, provider, api):
    api.start(plan())
    set_override(scope="run", run_id="run-1", role="auditor", category="", complexity="", model="o3", via="dashboard")
    service.complete("auditor", "tests", "medium", MESSAGES, run_id="run-1")
    service.complete("auditor", "tests", "medium", MESSAGES, run_id="another-run")
    assert provider.models_called() == ["o3", "gpt-4o"]


def test_builder_and_auditor_calls_return_the_originals_shape(service, provider, api):
    api.start(plan())
    provider.script("gpt-4o", (200, FakeProvider.answer("gpt-4o", "diff --git a/x b/x", provider.default_usage), {}, 0))
    provider.script(
        "gpt-4o",
        (
            200,
            FakeProvider.answer(
                "gpt-4o", '{"approved": false, "issues": [{"issue_key": "k"}]}', provider.default_usage
            ),
            {},
            0,
        ),
    )
    spec = {"name": "Add login", "description": "Password login", "task_category": "general", "complexity": "medium"}
    built = service.execute_builder_phase(spec, {"app.py": "print(1)"}, run_id="run-1", phase_id="P1")
    assert built["success"] and built["patch_content"] == "diff --git a/x b/x" and built["model_used"] == "gpt-4o"
    assert built["tokens_used"] == 1500 and built["error"] is None and built["request_id"]
    assert "Password login" in provider.requests[0]["body"]["messages"][1]["content"]
    reviewed = service.execute_auditor_review("diff", spec, run_id="run-1", phase_id="P1")
    assert reviewed["approved"] is False and reviewed["issues_found"] == [{"issue_key": "k"}]
    assert reviewed["decision"]["role"] == "auditor"


def test_a_failed_builder_call_reports_the_error_instead_of_raising(service, provider):
    provider.script("gpt-4o", (401, {"error": {"message": "bad key"}}, {}, 0))
    result = service.execute_builder_phase({"complexity": "medium"}, "", run_id="run-x", phase_id="P1")
    assert result["success"] is False and "HTTP 401 bad key" in result["error"]


def test_a_missing_api_key_is_a_clear_error(service, provider, monkeypatch):
    monkeypatch.delenv("FAKE_OPENAI_KEY")
    with pytest.raises(LlmError, match="set the FAKE_OPENAI_KEY environment variable"):
        service.complete("builder", None, "medium", MESSAGES)


def test_the_run_page_shows_each_phases_routing_decision(service, provider, api, client):
    api.start(plan())
    provider.script("gpt-4o", (429, {"error": {"message": "slow down"}}, {"Retry-After": "5"}, 0))
    service.complete("builder", None, "medium", MESSAGES, run_id="run-1", phase_id="P2")
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert "asked gpt-4o, used claude-haiku-4-5" in page
    assert "failed: gpt-4o: HTTP 429" in page


def test_failed_calls_keep_the_shape_callers_read(service, provider):
    provider.script("gpt-4o", (401, {"error": {"message": "bad key"}}, {}, 0))
    provider.script("gpt-4o", (401, {"error": {"message": "bad key"}}, {}, 0))
    built = service.execute_builder_phase({"complexity": "medium"}, "", run_id="r", phase_id="P1")
    reviewed = service.execute_auditor_review("diff", {"complexity": "medium"}, run_id="r", phase_id="P1")
    assert built["patch_content"] is None
    assert (reviewed["review"], reviewed["approved"], reviewed["issues_found"]) == (None, None, [])


# The original's wiring guide (DASHBOARD_COMPLETE.md, "Step 1"), verbatim, inside an executor
# package of the original's layout: its own `llm_service` and `database` modules.
WIRING_GUIDE = """
from .llm_service import LlmService
from .database import get_db

db = next(get_db())
llm = LlmService(db)
result = llm.execute_builder_phase(
    phase_spec=phase_spec,
    file_context=context,
    run_id=run.id,
    phase_id=phase.phase_id,
)
# Model automatically selected, usage tracked
"""


def test_the_original_wiring_guide_runs_unchanged(service, provider, api, tmp_path, monkeypatch):
    api.start(plan())
    package = tmp_path / "executor_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "llm_service.py").write_text("from routing.llm_service import LlmService  # noqa: F401\n")
    (package / "database.py").write_text("def get_db():\n    yield None\n")
    (package / "phase_step.py").write_text(
        "from types import SimpleNamespace\n"
        "run = SimpleNamespace(id='run-1')\n"
        "phase = SimpleNamespace(phase_id='P1')\n"
        "phase_spec = {'name': 'Add login', 'task_category': 'general', 'complexity': 'medium'}\n"
        "context = {'existing_files': {'app.py': 'print(1)'}}\n" + WIRING_GUIDE
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    step = __import__("executor_pkg.phase_step", fromlist=["result"])
    result = step.result
    assert result.success is True and result.error is None
    assert (result.model_used, result.tokens_used, result.patch_content) == ("gpt-4o", 1500, "ok")
    assert result["model_used"] == "gpt-4o"
    assert "print(1)" in provider.requests[0]["body"]["messages"][1]["content"]
    assert LlmUsageEvent.objects.get().run_id == "run-1"


def test_the_originals_keyword_arguments_reach_the_prompt(service, provider):
    spec = {"name": "Add login", "complexity": "medium"}
    built = service.execute_builder_phase(
        spec,
        {"app.py": "print(1)"},
        max_tokens=900,
        project_rules=["Never log passwords", {"rule": "Use the session store"}],
        run_hints=["The tests live in tests/auth"],
        run_id="run-9",
        phase_id="P1",
        run_context={"branch": "login"},
    )
    body = provider.requests[0]["body"]
    prompt = body["messages"][1]["content"]
    assert "Project rules:\n- Never log passwords\n- Use the session store" in prompt
    assert "Hints from earlier in this run:\n- The tests live in tests/auth" in prompt
    assert '"branch": "login"' in prompt
    assert body["max_tokens"] == 900
    reviewed = service.execute_auditor_review("diff", spec, 500, ["Keep diffs small"], run_id="run-9", phase_id="P1")
    assert "- Keep diffs small" in provider.requests[1]["body"]["messages"][1]["content"]
    assert provider.requests[1]["body"]["max_tokens"] == 500
    assert built.success and reviewed.success
    assert reviewed.approved is None and reviewed.issues_found == [] and reviewed.model_used == "gpt-4o"
    with pytest.raises(AttributeError):
        _ = built.no_such_field


def test_an_auxiliary_agent_role_is_routed(service, provider):
    result = service.complete("agent:planner", None, "medium", MESSAGES)
    assert result.model == "claude-sonnet-4-5"
    assert LlmUsageEvent.objects.get().role == "agent:planner"
