"""The OpenAI-compatible gateway, driven by the real openai SDK on loopback, forwarding to the local fake provider."""

import datetime as dt
import http.client
import json
import time
from urllib.parse import urlsplit

import openai
import pytest

from apikeys.models import ApiKey
from apikeys.services import create_api_key, revoke_api_key
from autopack_site import clock
from notes.models import HumanNote
from notes.services import add_note
from routing.services import set_cooldown
from tests.conftest import plan
from usage.models import LlmUsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "system", "content": "You build."}, {"role": "user", "content": "hello"}]


@pytest.fixture
def gateway(live_server, service, client):
    """The SDK pointed at our gateway with a named key, which forwards to the fake provider.

    Once a key exists every API write needs one: the test's own API client sends it too.
    """
    secret = create_api_key(name="agent").secret
    client.defaults["HTTP_X_API_KEY"] = secret
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, timeout=20)


def control(api, action, **fields):
    response = api.post("/runs/run-1/control", {"action": action, **fields})
    assert response.status_code == 200, response.content


def test_a_chat_completion_passes_through_untouched_and_is_recorded_token_for_token(gateway, provider):
    provider.default_usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 500,
        "total_tokens": 2500,
        "prompt_tokens_details": {"cached_tokens": 1500},
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    tools = [{"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"}}}]
    raw = gateway.chat.completions.with_raw_response.create(
        model="autopack/auto",
        messages=MESSAGES,
        tools=tools,
        seed=7,
        n=1,
        response_format={"type": "json_object"},
        extra_body={"vendor_field": {"kept": True}},
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "ok" and answer.usage.total_tokens == 2500
    sent = provider.requests[0]["body"]
    assert sent["model"] == "gpt-4o" and sent["messages"] == MESSAGES
    assert (sent["tools"], sent["seed"], sent["n"]) == (tools, 7, 1)
    assert sent["response_format"] == {"type": "json_object"} and sent["vendor_field"] == {"kept": True}
    assert provider.requests[0]["auth"] == "Bearer sk-test-openai"
    assert raw.headers["X-Autopack-Model"] == "gpt-4o"
    assert raw.headers["X-Autopack-Decision"].startswith("yaml: baseline gpt-4o")
    stored = LlmUsageEvent.objects.get()
    assert stored.request_id == raw.headers["X-Autopack-Request-Id"]
    figures = (stored.prompt_tokens, stored.completion_tokens, stored.cached_prompt_tokens, stored.reasoning_tokens)
    assert figures == (2000, 500, 1500, 200)
    assert stored.run_id == "" and stored.role == "builder" and stored.sent_by == "agent"


def test_models_lists_the_catalog_and_auto(gateway):
    names = [model.id for model in gateway.models.list()]
    assert names[0] == "autopack/auto" and "gpt-4o" in names and "claude-sonnet-4-5" in names


def test_a_catalog_model_named_by_the_caller_is_used(gateway, provider):
    raw = gateway.chat.completions.with_raw_response.create(model="gemini-2.5-flash", messages=MESSAGES)
    assert provider.models_called() == ["gemini-2.5-flash"]
    assert raw.headers["X-Autopack-Decision"] == "explicit: asked for gemini-2.5-flash by name"


def test_an_unknown_model_is_404_in_openai_s_shape(gateway, provider):
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert caught.value.body["code"] == "model_not_found" and "gpt-9" in caught.value.body["message"]
    assert provider.requests == []


def test_an_unknown_or_revoked_key_is_401_and_the_bootstrap_key_works(gateway, settings, live_server):
    def client(key):
        return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)

    with pytest.raises(openai.AuthenticationError) as caught:
        client("sk-wrong").models.list()
    assert caught.value.body["type"] == "authentication_error"
    revoke_api_key(key_id=ApiKey.objects.get(name="agent").pk)
    with pytest.raises(openai.AuthenticationError):
        gateway.models.list()
    settings.AUTOPACK_API_KEY = "sk-right"
    assert client("sk-right").models.list().data[0].id == "autopack/auto"


def test_a_body_without_messages_is_400(gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.chat.completions.create(model="autopack/auto", messages=[])
    assert "messages" in caught.value.body["message"]


def test_a_429_with_retry_after_falls_back_and_says_so(gateway, provider):
    provider.script("gpt-4o", (429, {"error": {"message": "slow down"}}, {"Retry-After": "30"}, 0))
    raw = gateway.chat.completions.with_raw_response.create(model="autopack/auto", messages=MESSAGES)
    assert provider.models_called() == ["gpt-4o", "claude-haiku-4-5"]
    assert raw.headers["X-Autopack-Model"] == "claude-haiku-4-5"
    assert "after 1 failed: gpt-4o: HTTP 429" in raw.headers["X-Autopack-Decision"]


def test_a_paused_run_is_refused_with_409_and_goes_on_when_resumed(gateway, provider, api):
    api.start(plan())
    hints = {"X-Autopack-Run": "run-1", "X-Autopack-Phase": "P1"}
    gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, extra_headers=hints)
    control(api, "pause", reason="reading the diff", by="ana")
    with pytest.raises(openai.ConflictError) as caught:
        gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, extra_headers=hints)
    assert caught.value.body["code"] == "run_paused"
    paused = "Run 'run-1' is paused by ana (key agent): reading the diff; resume it to go on"
    assert caught.value.body["message"] == paused
    control(api, "resume")
    gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, extra_headers=hints)
    assert len(provider.requests) == 2
    assert list(LlmUsageEvent.objects.values_list("run_id", "phase_id")) == [("run-1", "P1")] * 2


def test_a_run_driven_over_its_budget_gets_429_with_the_figures(gateway, provider, api):
    api.start(plan(token_cap=2000))
    hints = {"metadata": {"X-Autopack-Run": "run-1", "X-Autopack-Phase": "P1", "kept": "yes"}}
    for _ in range(2):
        gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, max_tokens=100, extra_body=hints)
    assert provider.requests[0]["body"]["metadata"] == {"kept": "yes"}
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, max_tokens=100, extra_body=hints)
    assert caught.value.body["code"] == "budget_exhausted"
    assert caught.value.body["message"] == "token_cap reached: 3,000 tokens used of a cap of 2,000"
    assert len(provider.requests) == 2


def test_notes_reach_the_forwarded_prompt_and_are_marked_delivered(gateway, provider, api):
    api.start(plan())
    add_note(text="Keep the public API unchanged", run_id="run-1")
    gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, extra_headers={"X-Autopack-Run": "run-1"})
    system = provider.requests[0]["body"]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You build.\n\n## Notes from the person")
    assert "Keep the public API unchanged" in system["content"]
    assert HumanNote.objects.get().delivered_at is not None


def test_a_phase_lends_its_category_to_the_call(gateway, provider, api):
    body = plan()
    body["phases"][0].update(task_category="security_auth_change", complexity="high")
    api.start(body)
    gateway.chat.completions.create(
        model="autopack/auto", messages=MESSAGES, extra_headers={"X-Autopack-Run": "run-1", "X-Autopack-Phase": "P1"}
    )
    assert provider.models_called() == ["claude-sonnet-4-5"]


def test_a_critical_call_fails_at_once_with_retry_after_when_the_cooldown_outlasts_its_timeout(gateway, provider):
    until = clock.now() + dt.timedelta(minutes=10)
    set_cooldown(provider="anthropic", until=until, reason="429 from anthropic")
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.chat.completions.create(
            model="autopack/auto", messages=MESSAGES, extra_headers={"X-Autopack-Category": "security_auth_change"}
        )
    assert caught.value.body["code"] == "provider_cooling_down"
    assert f"anthropic is cooling down until {until:%Y-%m-%d %H:%M:%S} UTC" in caught.value.body["message"]
    assert 590 <= int(caught.value.response.headers["Retry-After"]) <= 600
    assert provider.requests == []


def test_a_critical_call_waits_out_a_short_cooldown_and_keeps_its_model(gateway, provider):
    set_cooldown(provider="anthropic", until=clock.now() + dt.timedelta(seconds=1), reason="429 from anthropic")
    started = time.monotonic()
    raw = gateway.chat.completions.with_raw_response.create(
        model="autopack/auto", messages=MESSAGES, extra_headers={"X-Autopack-Category": "security_auth_change"}
    )
    assert time.monotonic() - started >= 0.5
    assert raw.headers["X-Autopack-Model"] == "claude-sonnet-4-5"
    assert provider.models_called() == ["claude-sonnet-4-5"]


def test_a_streamed_chat_passes_the_events_through_and_records_the_last_chunk_s_usage(gateway, provider):
    with gateway.chat.completions.with_streaming_response.create(
        model="autopack/auto", messages=MESSAGES, stream=True
    ) as raw:
        assert raw.headers["Content-Type"] == "text/event-stream" and raw.headers["X-Autopack-Model"] == "gpt-4o"
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ok"
    assert chunks[-1].usage.total_tokens == 1500
    assert provider.requests[0]["body"]["stream_options"] == {"include_usage": True}
    stored = LlmUsageEvent.objects.get()
    assert (stored.prompt_tokens, stored.completion_tokens, stored.status) == (1200, 300, "ok")
    assert "incomplete" not in stored.decision and stored.request_id == raw.headers["X-Autopack-Request-Id"]


def test_a_stream_whose_provider_fails_before_the_first_byte_falls_back(gateway, provider):
    provider.script("gpt-4o", (503, {"error": {"message": "overloaded"}}, {}, 0))
    stream = gateway.chat.completions.create(model="autopack/auto", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "ok"
    assert provider.models_called() == ["gpt-4o", "claude-haiku-4-5"]
    assert LlmUsageEvent.objects.get().model == "claude-haiku-4-5"


def test_a_client_gone_mid_stream_still_gets_the_provider_s_usage_recorded_as_incomplete(
    live_server, service, provider
):
    provider.chunk_delay = 0.2
    body = {"model": "autopack/auto", "messages": MESSAGES, "stream": True}
    address = urlsplit(live_server.url)
    client = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    client.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    assert client.getresponse().read1(100)
    client.close()
    for _ in range(50):
        if LlmUsageEvent.objects.exists():
            break
        time.sleep(0.1)
    stored = LlmUsageEvent.objects.get()
    assert (stored.prompt_tokens, stored.completion_tokens) == (1200, 300)
    assert stored.decision["incomplete"] is True


def test_a_response_passes_through_with_instructions_notes_and_exact_usage(gateway, provider):
    add_note(text="Prefer small diffs")
    answer = gateway.responses.create(model="autopack/auto", input="hello", instructions="You build.", temperature=0.2)
    assert answer.output_text == "ok" and answer.usage.input_tokens == 900
    sent = provider.requests[0]
    assert sent["path"] == "/v1/responses" and sent["body"]["temperature"] == 0.2
    assert sent["body"]["instructions"].startswith("You build.\n\n## Notes from the person")
    stored = LlmUsageEvent.objects.get()
    figures = (stored.prompt_tokens, stored.completion_tokens, stored.cached_prompt_tokens, stored.reasoning_tokens)
    assert figures == (900, 100, 200, 40)


def test_a_streamed_response_records_the_completed_event_s_usage(gateway, provider):
    events = list(gateway.responses.create(model="autopack/auto", input="hello", stream=True))
    assert [e.type for e in events][-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "ok"
    stored = LlmUsageEvent.objects.get()
    assert (stored.prompt_tokens, stored.completion_tokens, stored.total_tokens) == (900, 100, 1000)
    assert json.loads(json.dumps(stored.decision))["used"] == "gpt-4o"


def test_with_logins_required_the_gateway_still_takes_its_key(gateway, settings):
    settings.AUTOPACK_REQUIRE_LOGIN = True
    assert gateway.models.list().data[0].id == "autopack/auto"
