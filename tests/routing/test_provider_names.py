"""The original's provider keys and any spelling of a provider's name are one provider."""

import pytest

from routing.config import ConfigError, load_config
from tests.usage.conftest import event
from usage.aggregation import usage_summary
from usage.models import LlmUsageEvent
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db


def test_an_original_files_provider_keys_name_our_providers(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "provider_quotas:\n"
        "  google_gemini: {weekly_token_cap: 1000}\n"
        "  zhipu_glm: {weekly_token_cap: 2000}\n"
        "  OpenAI: {weekly_token_cap: 3000}\n"
    )
    config = load_config(path)
    assert {name: q.weekly_token_cap for name, q in config.provider_quotas.items()} == {
        "google": 1000,
        "zhipu": 2000,
        "openai": 3000,
    }


def test_a_provider_named_twice_is_a_problem(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("provider_quotas:\n  google: {weekly_token_cap: 1}\n  google_gemini: {weekly_token_cap: 2}\n")
    with pytest.raises(ConfigError, match="provider_quotas.google_gemini: names the provider 'google' a second time"):
        load_config(path)


def test_events_naming_a_provider_any_way_count_as_one(models_config):
    record_usage_events(
        [
            event(provider="google_gemini", model="gemini-2.5-flash"),
            event(provider="Google", model="gemini-2.5-flash"),
            event(provider="google", model="gemini-2.5-flash"),
        ],
        atomic_batch=True,
    )
    assert set(LlmUsageEvent.objects.values_list("provider", flat=True)) == {"google"}
    providers = [row["provider"] for row in usage_summary("week")["providers"]]
    assert providers.count("google") == 1 and "google_gemini" not in providers


def test_an_event_naming_the_wrong_provider_for_a_catalog_model_is_refused(api, models_config):
    response = api.post("/api/usage", event(provider="anthropic", model="gpt-4o"))
    assert response.status_code == 400
    assert response.json()["details"] == {"provider": "gpt-4o is served by openai, not anthropic"}


def test_a_model_without_a_price_shows_unpriced(api, client, models_config):
    api.post("/api/usage", event(provider="openai", model="house-model-7"))
    row = api.get("/dashboard/usage").json()["models"][0]
    assert (row["model"], row["priced"], row["cost_usd"]) == ("house-model-7", False, None)
    panel = client.get("/dashboard/usage/").content.decode()
    assert "unpriced" in panel


def test_provider_rows_name_their_period(api, models_config):
    api.post("/api/usage", event())
    assert api.get("/dashboard/usage", period="day").json()["providers"][0]["period"] == "day"
