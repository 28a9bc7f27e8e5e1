import json

import pytest

from tests.usage.conftest import event
from usage import recording
from usage.models import LlmUsageEvent, UsageBucket

pytestmark = pytest.mark.django_db


def test_one_event_over_http_is_recorded(api, models_config):
    response = api.post("/api/usage", event(request_id="a"))
    assert response.status_code == 201
    assert response.json() == {"imported": 1, "duplicates": 0, "rejected": 0}
    assert LlmUsageEvent.objects.get().total_tokens == 150


def test_a_batch_is_recorded_and_a_replay_is_all_duplicates(api, models_config):
    batch = {"events": [event(request_id=f"r{i}") for i in range(5)]}
    assert api.post("/api/usage", batch).json()["imported"] == 5
    replay = api.post("/api/usage", batch)
    assert replay.status_code == 200 and replay.json() == {"imported": 0, "duplicates": 5, "rejected": 0}
    assert UsageBucket.objects.get(size="hour").calls == 5


def test_a_batch_with_one_bad_event_writes_nothing(api, models_config):
    response = api.post("/api/usage", {"events": [event(), event(role="nobody"), event()]})
    assert response.status_code == 400
    assert response.json()["details"] == {"events[1].role": "must be builder, auditor or agent:<name>"}
    assert not LlmUsageEvent.objects.exists() and not UsageBucket.objects.exists()


def test_a_conflicting_request_id_is_409_and_writes_nothing(api, models_config):
    api.post("/api/usage", event(request_id="same"))
    response = api.post("/api/usage", {"events": [event(request_id="new"), event(request_id="same", prompt_tokens=1)]})
    assert response.status_code == 409
    assert LlmUsageEvent.objects.count() == 1


def test_a_request_id_twice_in_one_batch_with_other_figures_is_a_conflict(api, models_config):
    response = api.post("/api/usage", {"events": [event(request_id="x"), event(request_id="x", prompt_tokens=7)]})
    assert response.status_code == 409 and not LlmUsageEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{"events": []}, {"events": "many"}, {"events": [event()] * 10_001}, [event()], "text", {"events": [1]}],
    ids=["empty", "not-a-list", "too-many", "top-level-list", "string", "event-not-object"],
)
def test_malformed_batches_are_400(api, models_config, body):
    response = api.post("/api/usage", body)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error", "details"}
    assert not LlmUsageEvent.objects.exists()


def test_the_ingest_body_limit_is_8_mib(api, models_config):
    big = json.dumps({"events": [event(run_id="x" * 200)] * 10_000, "pad": "y" * (8 * 1024 * 1024)})
    response = api.post("/api/usage", big)
    assert response.status_code == 413
    assert response.json()["error"].startswith("Body is larger than")


def test_a_4_mib_batch_fits(api, models_config):
    events = [event(run_id="r" * 150, phase_id="p" * 90, request_id=f"req-{i:06d}" + "z" * 150) for i in range(10_000)]
    body = json.dumps({"events": events})
    assert 3 * 1024 * 1024 < len(body) < 8 * 1024 * 1024
    assert api.post("/api/usage", body).status_code == 201
    assert LlmUsageEvent.objects.count() == 10_000


def test_ingest_follows_the_api_key_rules(api, client, models_config, settings):
    settings.AUTOPACK_API_KEY = "s3cret"
    assert api.post("/api/usage", event()).status_code == 401
    assert api.post("/api/usage", event(), **{"X-API-Key": "s3cret"}).status_code == 201
    settings.AUTOPACK_API_KEY = ""
    response = client.post("/api/usage", json.dumps(event()), content_type="application/json", REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 403
    form = client.post("/api/usage", {"model": "gpt-4o"})
    assert form.status_code == 415
    assert LlmUsageEvent.objects.count() == 1


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:30:00", "1999-12-31T23:59:59Z"])
def test_dates_outside_any_real_call_are_400(api, models_config, moment):
    response = api.post("/api/usage", event(created_at=moment))
    assert response.status_code == 400 and "created_at" in response.json()["details"]


def test_a_replay_racing_its_original_counts_as_a_duplicate(api, models_config, monkeypatch):
    api.post("/api/usage", event(request_id="r1"))
    real = recording._stored_figures
    calls = []

    def miss_once(ids):
        calls.append(ids)
        # The first look misses the row, as when a concurrent writer has not committed yet.
        return {} if len(calls) == 1 else real(ids)

    monkeypatch.setattr(recording, "_stored_figures", miss_once)
    response = api.post("/api/usage", event(request_id="r1"))
    assert response.status_code == 200 and response.json()["duplicates"] == 1
    assert LlmUsageEvent.objects.count() == 1
