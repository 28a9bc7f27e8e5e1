import pytest

from routing.llm_service import LlmService
from routing.quotas import forget_cached_states
from tests.routing.fake_provider import FakeProvider

ROUTING = {
    "complexity_models": {
        "low": {"builder": "gpt-4o-mini", "auditor": "gpt-4o-mini"},
        "medium": {"builder": "gpt-4o", "auditor": "gpt-4o"},
        "high": {"builder": "claude-sonnet-4-5", "auditor": "claude-opus-4-1"},
    },
    "category_models": {
        "security_auth_change": {
            "builder_model_override": "claude-opus-4-1",
            "auditor_model_override": "claude-opus-4-1",
        },
        "docs": {"builder_model_override": "gpt-4o-mini"},
    },
    "provider_quotas": {
        "openai": {"daily_token_cap": 1000, "soft_limit_ratio": 0.8},
        "anthropic": {"weekly_token_cap": 1000, "soft_limit_ratio": 0.5},
        "google": {"weekly_token_cap": 1000, "soft_limit_ratio": 0.9},
    },
    "quota_routing": {"enabled": True, "never_fallback_categories": ["security_auth_change"]},
    "fallback_strategy": {
        "by_category": {
            "docs": {"fallbacks": ["claude-haiku-4-5"]},
            "medium_complexity_general": {"fallbacks": ["gemini-2.5-flash"]},
        },
        "default_fallbacks": ["gemini-2.5-pro"],
    },
    "defaults": {"high_risk_builder": "gpt-4.1", "high_risk_auditor": "gpt-4.1"},
}


@pytest.fixture
def routing(models_config):
    """The routing rules of tests/routing/test_router.py, with fresh quota reads."""
    models_config(ROUTING)
    forget_cached_states()
    yield
    forget_cached_states()


@pytest.fixture
def provider():
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture
def service(provider, models_config, monkeypatch):
    """models.yaml pointing every provider at the fake, with a short chain and quotas."""
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-test-anthropic")
    monkeypatch.setenv("FAKE_GOOGLE_KEY", "sk-test-google")
    models_config(
        {
            "providers": {
                "openai": {"base_url": provider.url, "api_key_env": "FAKE_OPENAI_KEY"},
                "anthropic": {"base_url": provider.url, "api_key_env": "FAKE_ANTHROPIC_KEY"},
                "google": {"base_url": provider.url, "api_key_env": "FAKE_GOOGLE_KEY"},
            },
            "complexity_models": {
                "low": {"builder": "gpt-4o-mini", "auditor": "gpt-4o-mini"},
                "medium": {"builder": "gpt-4o", "auditor": "gpt-4o"},
                "high": {"builder": "claude-sonnet-4-5", "auditor": "claude-opus-4-1"},
            },
            "category_models": {"security_auth_change": {"builder_model_override": "claude-sonnet-4-5"}},
            "provider_quotas": {"openai": {"daily_token_cap": 100_000}, "anthropic": {"weekly_token_cap": 100_000}},
            "quota_routing": {"enabled": True, "never_fallback_categories": ["security_auth_change"]},
            "fallback_strategy": {"default_fallbacks": ["claude-haiku-4-5", "gemini-2.5-flash"]},
        }
    )
    forget_cached_states()
    yield LlmService(timeout=2)
    forget_cached_states()
