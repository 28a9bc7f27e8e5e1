import copy
import json

import pytest
import yaml

QUICK_START = {
    "run": {
        "run_id": "test_dashboard_001",
        "safety_profile": "normal",
        "run_scope": "multi_tier",
        "token_cap": 5000000,
    },
    "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Tier 1"}],
    "phases": [
        {
            "phase_id": "F1.1",
            "phase_index": 0,
            "tier_id": "T1",
            "name": "Phase 1",
            "task_category": "general",
            "complexity": "medium",
        }
    ],
}


def plan(run_id="run-1", tiers=(("T1", 2), ("T2", 2)), **run_fields) -> dict:
    """A start payload with `tiers` given as (tier_id, number of phases); phase ids are P<n>."""
    body = {"run": {"run_id": run_id, **run_fields}, "tiers": [], "phases": []}
    n = 0
    for index, (tier_id, count) in enumerate(tiers):
        body["tiers"].append({"tier_id": tier_id, "tier_index": index, "name": f"Tier {tier_id}"})
        for _ in range(count):
            n += 1
            body["phases"].append({"phase_id": f"P{n}", "phase_index": n - 1, "tier_id": tier_id, "name": f"Phase {n}"})
    return body


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # Tests do not run collectstatic, so they use the finders instead of the hashed manifest; and
    # without autorefresh each new client would have WhiteNoise walk a collected STATIC_ROOT.
    settings.WHITENOISE_AUTOREFRESH = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts without another test's cached overrides, quota reads or run progress."""
    from django.core.cache import cache

    from routing.quotas import forget_cached_states
    from routing.router import forget_cached_overrides

    for forget in (forget_cached_overrides, forget_cached_states, cache.clear):
        forget()
    yield
    for forget in (forget_cached_overrides, forget_cached_states, cache.clear):
        forget()


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


class Api:
    """The Django test client speaking JSON, from a loopback address as a local executor would."""

    def __init__(self, client):
        self.client = client

    def post(self, url, data=None, **headers):
        body = data if isinstance(data, (bytes, str)) else json.dumps(data)
        return self.client.post(url, body, content_type="application/json", headers=headers)

    def get(self, url, **params):
        return self.client.get(url, params)

    def start(self, body=None):
        response = self.post("/runs/start", copy.deepcopy(body or plan()))
        assert response.status_code == 201, response.content
        return response.json()

    def move(self, run_id, phase_id, state, **figures):
        return self.post(f"/runs/{run_id}/phases/{phase_id}/update_status", {"state": state, **figures})

    def status(self, run_id):
        response = self.client.get(f"/dashboard/runs/{run_id}/status")
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def api(client):
    return Api(client)


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        skip = pytest.mark.skip(
            reason="PostgreSQL-only behaviour: concurrent writers, row locks, COPY, worker processes, restarts"
        )
        for item in items:
            if "postgres_only" in item.keywords:
                item.add_marker(skip)
