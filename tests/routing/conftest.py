import pytest

from routing.quotas import forget_cached_states

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
