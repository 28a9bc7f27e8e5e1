"""Run and phase ids in usage follow the runs API's rule, and no stored id can break a page."""

import pytest

from tests.conftest import plan
from tests.usage.conftest import event
from usage import recording
from usage.models import LlmUsageEvent, RunUsageBucket

pytestmark = pytest.mark.django_db

PAGES = ("/dashboard/", "/dashboard/usage/", "/dashboard/usage/panel", "/dashboard/usage", "/dashboard/models/")


@pytest.mark.parametrize("field", ["run_id", "phase_id"])
def test_an_id_with_a_slash_is_refused_like_the_runs_api_refuses_it(api, models_config, field):
    response = api.post("/api/usage", event(**{"request_id": "r1", "run_id": "feature-1", field: "feature/login-42"}))
    assert response.status_code == 400
    assert response.json()["details"] == {field: "may hold only letters, digits and _ . : @ + - (not first)"}
    assert not LlmUsageEvent.objects.exists()


def test_the_runs_api_refuses_the_same_id(api):
    response = api.post("/runs/start", plan("feature/login-42"))
    assert response.status_code == 400
    assert "run.run_id" in response.json()["details"]


def test_a_stored_id_no_url_can_carry_is_shown_as_text_on_every_page(client, models_config):
    # An event stored before the rule existed (or written by hand) must not take a page down.
    recording.record_usage(provider="openai", model="gpt-4o", role="builder", prompt_tokens=1, completion_tokens=1)
    LlmUsageEvent.objects.update(run_id="feature/login-42", phase_id="P1")
    RunUsageBucket.objects.create(
        start=LlmUsageEvent.objects.get().created_at.replace(minute=0, second=0, microsecond=0),
        run_id="feature/login-42",
        phase_id="P1",
        total_tokens=2,
        cost_usd=0,
        calls=1,
    )
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
    panel = client.get("/dashboard/usage/").content.decode()
    assert "feature/login-42" in panel
    assert 'href="/dashboard/runs/feature' not in panel


def test_top_runs_link_only_to_runs_that_exist(api, client, models_config):
    api.start(plan("run-1"))
    recording.record_usage(provider="openai", model="gpt-4o", role="builder", run_id="run-1", **_tokens())
    recording.record_usage(provider="openai", model="gpt-4o", role="builder", run_id="never-started", **_tokens())
    panel = client.get("/dashboard/usage/").content.decode()
    assert 'href="/dashboard/runs/run-1/"' in panel
    assert "never-started" in panel and 'href="/dashboard/runs/never-started/"' not in panel


def _tokens():
    return {"prompt_tokens": 10, "completion_tokens": 5}
