"""Named API keys: a secret shown once, used by either header form, revoked, and named in what it sent."""

import datetime as dt
import hashlib
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apikeys.models import ApiKey
from apikeys.services import create_api_key, revoke_api_key
from autopack_site import clock
from autopack_site.access import KEY_NEEDED, KEY_REFUSED
from autopack_site.openapi import openapi_spec
from notes.models import HumanNote
from routing.models import ModelOverride, OverrideChange
from runs.models import Run, RunEvent
from tests.conftest import plan
from tests.routing.conftest import ROUTING
from tests.usage.conftest import event
from usage.maintenance import rebuild_totals
from usage.models import KeyUsageBucket, LlmUsageEvent
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")


@pytest.fixture
def key():
    return create_api_key(name="ci-executor")


def post(client, url, body, **headers):
    return client.post(url, body, content_type="application/json", headers=headers)


def every_write_endpoint():
    """(method, path) of every write the API describes, with its path parameters filled in."""
    for path, methods in openapi_spec()["paths"].items():
        for method in methods:
            if method in WRITE_METHODS:
                yield method, re.sub(r"\{[^}]+\}", "x1", path)


def test_the_command_prints_the_secret_once_and_stores_only_its_digest(capsys):
    call_command("create_api_key", "nightly-agent")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    stored = ApiKey.objects.get(name="nightly-agent")
    assert secret.startswith(stored.prefix) and len(secret) > 40
    assert stored.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.values().get())
    assert stored.last_used_at is None and stored.revoked_at is None


def test_a_second_key_of_the_same_name_is_refused(key):
    with pytest.raises(Exception, match="exists already"):
        call_command("create_api_key", "ci-executor")


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_a_named_key_starts_a_run_by_either_header_and_is_recorded(client, key, header):
    value = key.secret if header == "X-API-Key" else f"Bearer {key.secret}"
    with clock.frozen_at(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)):
        response = post(client, "/runs/start", plan(), **{header: value, "REMOTE_ADDR": "10.1.2.3"})
    assert response.status_code == 201, response.content
    assert Run.objects.get().started_by == "ci-executor"
    assert ApiKey.objects.get().last_used_at == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def test_last_used_is_written_at_most_once_a_minute(client, key):
    post(client, "/runs/start", plan(), **{"X-API-Key": key.secret})
    with CaptureQueriesContext(connection) as queries:
        post(client, "/runs/run-1/update_status", {"state": "GATE"}, **{"X-API-Key": key.secret})
    assert not [q for q in queries.captured_queries if "UPDATE" in q["sql"] and "apikeys_apikey" in q["sql"]]


@pytest.mark.parametrize("method,path", list(every_write_endpoint()))
def test_every_write_endpoint_refuses_a_missing_wrong_or_revoked_key(client, key, method, path):
    revoked = create_api_key(name="old-laptop")
    revoke_api_key(key_id=revoked.key.pk)
    send = getattr(client, method)
    for headers, message in (
        ({}, KEY_NEEDED),
        ({"X-API-Key": key.secret + "x"}, KEY_REFUSED),
        ({"Authorization": "Bearer apk_nothing"}, KEY_REFUSED),
        ({"X-API-Key": revoked.secret}, KEY_REFUSED),
        ({"Authorization": f"Bearer {revoked.secret}"}, KEY_REFUSED),
    ):
        response = send(path, "{}", content_type="application/json", headers=headers)
        assert response.status_code == 401, (method, path, headers, response.content)
        assert response.json() == {"error": message, "details": {}}


def test_a_revoked_key_is_refused_from_then_on(client, key):
    assert post(client, "/runs/start", plan(), **{"X-API-Key": key.secret}).status_code == 201
    revoke_api_key(key_id=key.key.pk)
    response = post(client, "/runs/start", plan("run-2"), **{"X-API-Key": key.secret})
    assert response.status_code == 401 and response.json()["error"] == KEY_REFUSED
    assert Run.objects.count() == 1


def test_the_bootstrap_key_still_works_beside_named_keys(client, key, settings):
    settings.AUTOPACK_API_KEY = "bootstrap-0123456789"
    response = post(client, "/runs/start", plan(), Authorization="Bearer bootstrap-0123456789")
    assert response.status_code == 201
    assert Run.objects.get().started_by == "AUTOPACK_API_KEY"


def test_usage_phase_updates_notes_and_overrides_name_the_key(client, key, models_config, settings, tmp_path):
    models_config(ROUTING)
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "notes.md")
    auth = {"Authorization": f"Bearer {key.secret}"}
    assert post(client, "/runs/start", plan(), **auth).status_code == 201
    assert post(client, "/runs/run-1/phases/P1/update_status", {"state": "EXECUTING"}, **auth).status_code == 200
    assert (
        post(client, "/api/usage", {"events": [event(request_id="a"), event(request_id="b")]}, **auth).status_code
        == 201
    )
    assert post(client, "/dashboard/human-notes", {"note": "Keep the schema"}, **auth).status_code in (200, 201)
    override = {"scope": "global", "role": "builder", "category": "docs", "complexity": "low", "model": "o3"}
    assert post(client, "/dashboard/models/override", override, **auth).status_code == 200
    assert set(LlmUsageEvent.objects.values_list("sent_by", flat=True)) == {"ci-executor"}
    assert RunEvent.objects.filter(phase_id="P1").get().actor == "ci-executor"
    assert HumanNote.objects.get().author == "ci-executor"
    assert ModelOverride.objects.get().changed_by == "ci-executor"
    assert OverrideChange.objects.get().changed_by == "ci-executor"


def test_a_loopback_client_without_keys_set_up_still_writes(client):
    assert post(client, "/runs/start", plan()).status_code == 201
    assert Run.objects.get().started_by == ""


def test_once_a_named_key_exists_loopback_alone_is_not_enough(client, key):
    response = post(client, "/runs/start", plan())
    assert response.status_code == 401 and response.json()["error"] == KEY_NEEDED


def test_the_admin_lists_creates_and_revokes_keys_through_the_service(admin_client, key):
    listing = admin_client.get("/admin/apikeys/apikey/").content.decode()
    assert "ci-executor" in listing and key.key.prefix in listing
    created = admin_client.post("/admin/apikeys/apikey/add/", {"name": "dana"}, follow=True).content.decode()
    secret = re.search(r"shown only now: (apk_\S+?)<", created).group(1)
    assert ApiKey.objects.get(name="dana").secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    response = admin_client.post(
        "/admin/apikeys/apikey/",
        {"action": "revoke", "_selected_action": [key.key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert ApiKey.objects.get(name="ci-executor").is_revoked
    assert not ApiKey.objects.get(name="dana").is_revoked


def test_the_usage_panel_shows_usage_by_key_and_the_rebuild_agrees(client, key, models_config):
    other = create_api_key(name="nightly")
    for secret, ids in ((key.secret, "abc"), (other.secret, "d")):
        body = {"events": [event(request_id=i, prompt_tokens=1000, completion_tokens=0) for i in ids]}
        assert post(client, "/api/usage", body, **{"X-API-Key": secret}).status_code == 201
    record_usage_events([event(request_id="local", prompt_tokens=500, completion_tokens=0)], atomic_batch=True)
    assert list(KeyUsageBucket.objects.values_list("sent_by", "total_tokens", "calls").order_by("-total_tokens")) == [
        ("ci-executor", 3000, 3),
        ("nightly", 1000, 1),
        ("", 500, 1),
    ]
    page = client.get("/dashboard/usage/panel", {"period": "day"}).content.decode()
    section = page.split("By API key or person")[1].split("</ol>")[0]
    assert section.index("ci-executor") < section.index("nightly") < section.index("no key (loopback or a file)")
    assert "3K · $" in section and "3 calls" in section
    # The key buckets are rebuilt from the events like the others: nothing differs.
    assert rebuild_totals(dry_run=True).differences == []
