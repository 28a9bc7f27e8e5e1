import datetime as dt

import pytest

from autopack_site import clock

NOW = dt.datetime(2026, 3, 10, 15, 30, 12, 345678, tzinfo=dt.UTC)


@pytest.fixture
def frozen_now():
    with clock.frozen_at(NOW):
        yield NOW


def event(**fields) -> dict:
    base = {"provider": "openai", "model": "gpt-4o", "role": "builder", "prompt_tokens": 100, "completion_tokens": 50}
    return base | fields
