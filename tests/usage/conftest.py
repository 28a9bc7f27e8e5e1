import datetime as dt

import pytest
import yaml

from autopack_site import clock

NOW = dt.datetime(2026, 3, 10, 15, 30, 12, 345678, tzinfo=dt.UTC)


@pytest.fixture
def models_config(tmp_path, settings):
    """Write a models.yaml for the test and point the settings at it; returns a function to rewrite it."""
    path = tmp_path / "models.yaml"

    def write(data: dict):
        path.write_text(yaml.safe_dump(data))
        settings.AUTOPACK_MODELS_CONFIG = str(path)
        return path

    write(
        {
            "provider_quotas": {
                "openai": {"daily_token_cap": 1000, "weekly_token_cap": 5000, "monthly_token_cap": 20000},
                "anthropic": {"weekly_token_cap": 7000},
            }
        }
    )
    return write


@pytest.fixture
def frozen_now():
    with clock.frozen_at(NOW):
        yield NOW


def event(**fields) -> dict:
    base = {"provider": "openai", "model": "gpt-4o", "role": "builder", "prompt_tokens": 100, "completion_tokens": 50}
    return base | fields
