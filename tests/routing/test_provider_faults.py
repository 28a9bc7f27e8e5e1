"""Provider faults end to end: each way a provider fails, through LlmService and through the gateway.

The gateway is driven by the real openai SDK on loopback, streamed and not. Every provider is the local
fake provider over HTTP, except a provider that is down: its address is a bound port nobody listens on.
A non-critical call falls back down its chain and a critical one never does; either way every attempt's
usage is recorded once, and the failing provider cools down and says so on the dashboard's provider strip.
"""

import html
import re
import socket
from dataclasses import dataclass

import openai
import pytest
from django.db.models import Sum

from apikeys.services import create_api_key
from autopack_site import gateway as gateway_module
from routing.budgets import RunReservation
from routing.calls import ProviderCoolingDown, ProviderFailed
from routing.llm_service import LlmService
from routing.models import ProviderCooldown
from routing.quotas import forget_cached_states
from routing.router import ChainCoolingDown
from tests.conftest import plan
from usage.maintenance import rebuild_totals
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket

# A provider attempt's timeout in these tests; the slow provider answers well after it.
TIMEOUT = 0.5
SLOW = 2.0
MESSAGES = [{"role": "user", "content": "hello"}]
CRITICAL = "security_auth_change"
# The fake's usage for an answer that came through: what the fallback's row must hold, token for token.
ANSWERED = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
ROUTING = {
    "complexity_models": {
        "low": {"builder": "gpt-4o-mini", "auditor": "gpt-4o-mini"},
        "medium": {"builder": "gpt-4o", "auditor": "gpt-4o"},
        "high": {"builder": "claude-sonnet-4-5", "auditor": "claude-opus-4-1"},
    },
    "category_models": {CRITICAL: {"builder_model_override": "claude-sonnet-4-5"}},
    "provider_quotas": {
        "openai": {"daily_token_cap": 100_000},
        "anthropic": {"weekly_token_cap": 100_000},
        "google": {"weekly_token_cap": 100_000},
    },
    "quota_routing": {"enabled": True, "never_fallback_categories": [CRITICAL]},
    "fallback_strategy": {"default_fallbacks": ["claude-haiku-4-5", "gemini-2.5-flash"]},
}
# The chain of a general, medium-complexity builder call, and the critical call's only model.
CHAIN = [("gpt-4o", "openai"), ("claude-haiku-4-5", "anthropic"), ("gemini-2.5-flash", "google")]
CRITICAL_MODEL = ("claude-sonnet-4-5", "anthropic")


@dataclass(frozen=True)
class Fault:
    name: str
    # The fake's answer (status, body, headers, delay); None: nothing listens at the provider's address.
    answer: tuple | None
    # How the failed attempt is reported, in the decision and the cooldown's reason.
    says: str
    cooldown_seconds: int
    # Prompt tokens the failed answer reports: recorded as one error row.
    reported_tokens: int = 0
    timed_out: bool = False

    def __str__(self):
        return self.name


FAULTS = [
    Fault("down", None, "could not connect", 15),
    Fault("slow", (200, None, {}, SLOW), f"timed out after {TIMEOUT:g} s", 15, timed_out=True),
    Fault("429", (429, {"error": {"message": "slow down"}}, {"Retry-After": "42"}, 0), "HTTP 429", 42),
    Fault(
        "500",
        (500, {"error": {"message": "upstream died"}, "usage": {"prompt_tokens": 800, "completion_tokens": 0}}, {}, 0),
        "HTTP 500",
        15,
        reported_tokens=800,
    ),
    Fault(
        "not json",
        (200, b"<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"}, 0),
        "malformed answer",
        15,
    ),
    Fault(
        "not openai's shape",
        (200, {"detail": "upstream unavailable", "usage": {"prompt_tokens": 60, "completion_tokens": 0}}, {}, 0),
        "malformed answer",
        15,
        reported_tokens=60,
    ),
]
FAULT = {fault.name: fault for fault in FAULTS}


def on(path: str, *faults: Fault) -> list:
    """Test cases: each fault through one path (service, gateway, gateway stream).

    LlmService runs in the test's transaction; the gateway serves from another thread, so its tests commit.
    """
    mark = pytest.mark.django_db if path == "service" else pytest.mark.django_db(transaction=True)
    return [pytest.param(fault, path, marks=mark, id=f"{fault}-{path}") for fault in faults]


@pytest.fixture
def dead_port():
    """A loopback port bound but not listening: connecting to it is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def fail_with(provider, models_config, monkeypatch, dead_port):
    """Returns a function that makes the given models fail with a fault, once each: models.yaml points their
    providers at the dead port (down), or the fake is scripted to answer them with the fault."""
    for name in ("OPENAI", "ANTHROPIC", "GOOGLE"):
        monkeypatch.setenv(f"FAKE_{name}_KEY", f"sk-test-{name.lower()}")

    def fail(fault: Fault, models: list[tuple[str, str]]) -> None:
        down = {provider_name for _, provider_name in models} if fault.answer is None else set()
        endpoints = {
            name: {
                "base_url": f"http://127.0.0.1:{dead_port}/v1" if name in down else provider.url,
                "api_key_env": f"FAKE_{name.upper()}_KEY",
            }
            for name in ("openai", "anthropic", "google")
        }
        models_config({**ROUTING, "providers": endpoints})
        forget_cached_states()
        if fault.answer is not None:
            for model, _ in models:
                provider.script(model, fault.answer)

    return fail


@pytest.fixture
def caller(request, api, client, monkeypatch):
    """Calls the way its path says: LlmService in this process, or the openai SDK through the live gateway."""
    path = request.node.callspec.params["path"]
    if path == "service":
        api.start(plan())
        return Caller(path, LlmService(timeout=TIMEOUT), None)
    live_server = request.getfixturevalue("live_server")
    monkeypatch.setattr(gateway_module, "TIMEOUT_SECONDS", TIMEOUT)
    secret = create_api_key(name="agent").secret
    client.defaults["HTTP_X_API_KEY"] = secret
    api.start(plan())
    sdk = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, timeout=20)
    return Caller(path, None, sdk)


@dataclass
class Reply:
    text: str
    model: str
    request_id: str
    # What the caller is told failed first.
    failures: str


@dataclass
class Caller:
    path: str
    service: LlmService | None
    sdk: openai.OpenAI | None

    def call(self, category: str | None = None) -> Reply:
        """One builder call of phase P1 of run-1, medium complexity."""
        if self.service is not None:
            done = self.service.complete("builder", category, "medium", MESSAGES, run_id="run-1", phase_id="P1")
            return Reply(done.text, done.model, done.request_id, "; ".join(done.failed_attempts))
        hints = {"X-Autopack-Run": "run-1", "X-Autopack-Phase": "P1", "X-Autopack-Category": category or ""}
        if self.path == "gateway":
            raw = self.sdk.chat.completions.with_raw_response.create(
                model="autopack/auto", messages=MESSAGES, extra_headers=hints
            )
            text = raw.parse().choices[0].message.content
        else:
            with self.sdk.chat.completions.with_streaming_response.create(
                model="autopack/auto", messages=MESSAGES, stream=True, extra_headers=hints
            ) as raw:
                text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        said = raw.headers
        return Reply(text, said["X-Autopack-Model"], said["X-Autopack-Request-Id"], said["X-Autopack-Decision"])

    def refused(self, category: str | None = None) -> Exception:
        """The error of a call that fails: LlmService's exception, or the SDK's for the gateway's answer."""
        with pytest.raises((ProviderFailed, ProviderCoolingDown, ChainCoolingDown, openai.APIStatusError)) as caught:
            self.call(category)
        return caught.value


def strip(client) -> dict[str, tuple[str, str]]:
    """The dashboard's provider strip, as its poll renders it: provider -> (status, what it says)."""
    page = client.get("/dashboard/models/status", {"period": "week"}).content.decode()
    entries = re.findall(r'<li class="strip-(\w+)"><strong>([^<]+)</strong>(.*?)</li>', page)
    return {name: (status, html.unescape(re.sub(r"<[^>]+>", "", text))) for status, name, text in entries}


def assert_cooling_down(client, provider: str, fault: Fault) -> None:
    """The provider's cooldown is stored for the fault's time and shows on the strip with its end."""
    cooldown = ProviderCooldown.objects.get(provider=provider)
    assert cooldown.reason.startswith(fault.says)
    seconds = (cooldown.until - cooldown.updated_at).total_seconds()
    assert fault.cooldown_seconds - 1 <= seconds <= fault.cooldown_seconds
    status, text = strip(client)[provider]
    assert status == "cooling"
    assert f"cooling down until {cooldown.until:%H:%M:%S} UTC ({fault.says}" in text


def reached(fault: Fault, models: list[str]) -> list[str]:
    """The models the fake provider sees asked: none when their provider is down."""
    return [] if fault.answer is None else models


def failed_rows(fault: Fault, models: list[str]) -> list[tuple[str, str, int, int]]:
    """The usage rows of these models' failed attempts: one each when the fault's answer reports usage."""
    return [(model, "error", fault.reported_tokens, 0) for model in models if fault.reported_tokens]


def assert_usage_recorded_once(*rows: tuple[str, str, int, int]) -> None:
    """Exactly these usage rows, (model, status, prompt, completion), and the totals equal to them."""
    events = LlmUsageEvent.objects.order_by("id")
    assert sorted((e.model, e.status, e.prompt_tokens, e.completion_tokens) for e in events) == sorted(rows)
    assert all((e.run_id, e.phase_id) == ("run-1", "P1") for e in events)
    assert len({e.request_id for e in events}) == len(rows)
    tokens = sum(prompt + completion for *_, prompt, completion in rows)
    hours, days = UsageBucket.objects.filter(size="hour"), UsageBucket.objects.filter(size="day")
    for buckets in (hours, days, RunUsageBucket.objects.all()):
        sums = buckets.aggregate(tokens=Sum("total_tokens"), calls=Sum("calls"))
        assert sums == {"tokens": tokens or None, "calls": len(rows) or None}
    assert rebuild_totals(dry_run=True).differences == []
    # Every attempt gave back its hold on the run's budget.
    assert not RunReservation.objects.exists()


@pytest.mark.parametrize("fault, path", on("service", *FAULTS) + on("gateway", *FAULTS) + on("gateway stream", *FAULTS))
def test_a_failing_provider_sends_the_call_down_its_chain(fault, path, fail_with, caller, provider, client):
    fail_with(fault, CHAIN[:1])
    answer = caller.call()
    assert (answer.text, answer.model) == ("ok", "claude-haiku-4-5")
    assert provider.models_called() == [*reached(fault, ["gpt-4o"]), "claude-haiku-4-5"]
    assert f"gpt-4o: {fault.says}" in answer.failures
    answered = LlmUsageEvent.objects.get(status="ok")
    assert answered.request_id == answer.request_id
    assert (answered.prompt_tokens, answered.completion_tokens, answered.total_tokens) == tuple(ANSWERED.values())
    [failed] = answered.decision["failed_attempts"]
    assert failed.startswith(f"gpt-4o: {fault.says}")
    assert_usage_recorded_once(("claude-haiku-4-5", "ok", 1200, 300), *failed_rows(fault, ["gpt-4o"]))
    assert_cooling_down(client, "openai", fault)
    assert strip(client)["anthropic"][0] == "under"


# A critical stream fails before its first byte, where a non-streamed call fails: the gateway's answer is the same.
@pytest.mark.parametrize("fault, path", on("service", *FAULTS) + on("gateway", *FAULTS))
def test_a_critical_call_never_falls_back_and_then_waits_for_the_cooldown(
    fault, path, fail_with, caller, provider, client
):
    fail_with(fault, [CRITICAL_MODEL])
    error = caller.refused(CRITICAL)
    if path == "service":
        assert isinstance(error, ProviderFailed) and error.timed_out == fault.timed_out
        message = str(error)
    else:
        assert error.status_code == (504 if fault.timed_out else 502)
        assert error.body["type"] == "server_error"
        assert error.body["code"] == ("provider_timeout" if fault.timed_out else "provider_error")
        message = error.body["message"]
    assert message.startswith(f"claude-sonnet-4-5 failed ({fault.says}")
    assert message.endswith(f"{CRITICAL} is never downgraded, so no fallback")
    assert provider.models_called() == reached(fault, ["claude-sonnet-4-5"])
    assert_usage_recorded_once(*failed_rows(fault, ["claude-sonnet-4-5"]))
    assert_cooling_down(client, "anthropic", fault)

    # The next critical call finds the provider cooling down for longer than its timeout: it fails at
    # once, saying when to come back, and nothing reaches the provider.
    until = ProviderCooldown.objects.get(provider="anthropic").until
    again = caller.refused(CRITICAL)
    if path == "service":
        assert isinstance(again, ProviderCoolingDown) and again.until == until
        retry_after = again.retry_after
    else:
        assert (again.status_code, again.body["code"]) == (429, "provider_cooling_down")
        retry_after = int(again.response.headers["Retry-After"])
    assert fault.cooldown_seconds - 2 <= retry_after <= fault.cooldown_seconds
    assert provider.models_called() == reached(fault, ["claude-sonnet-4-5"])


# Which status the gateway gives depends only on whether the last attempt timed out.
@pytest.mark.parametrize("fault, path", on("service", *FAULTS) + on("gateway", FAULT["500"], FAULT["slow"]))
def test_a_chain_that_fails_throughout_is_a_provider_error(fault, path, fail_with, caller, provider, client):
    fail_with(fault, CHAIN)
    error = caller.refused()
    if path == "service":
        assert isinstance(error, ProviderFailed) and error.timed_out == fault.timed_out
        message = str(error)
    else:
        assert error.status_code == (504 if fault.timed_out else 502)
        assert error.body["code"] == ("provider_timeout" if fault.timed_out else "provider_error")
        message = error.body["message"]
    models = [model for model, _ in CHAIN]
    assert message.startswith("every attempt failed: ")
    assert re.findall(rf"([\w.-]+): {re.escape(fault.says)}", message) == models
    assert provider.models_called() == reached(fault, models)
    assert_usage_recorded_once(*failed_rows(fault, models))
    for _, provider_name in CHAIN:
        assert_cooling_down(client, provider_name, fault)


@pytest.mark.parametrize("fault, path", on("service", FAULT["500"]) + on("gateway", FAULT["500"]))
def test_a_call_whose_whole_chain_cools_down_is_told_when_to_come_back(fault, path, fail_with, caller, provider):
    fail_with(fault, CHAIN)
    caller.refused()
    provider.requests.clear()
    soonest = min(ProviderCooldown.objects.values_list("until", flat=True))
    error = caller.refused()
    if path == "service":
        assert isinstance(error, ChainCoolingDown) and error.until == soonest
        retry_after = error.retry_after
    else:
        assert (error.status_code, error.body["code"]) == (429, "provider_cooling_down")
        retry_after = int(error.response.headers["Retry-After"])
    assert 13 <= retry_after <= 15
    assert provider.requests == []
