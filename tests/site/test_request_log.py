"""One log line per request, naming the key or user that made it; unchanged polls only at DEBUG."""

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apikeys.services import create_api_key
from runs.models import Run

pytestmark = pytest.mark.django_db

LOGGER = "autopack.requests"
# method, path, status, duration, who
LINE = re.compile(r"^(\S+) (\S+) (\d{3}) (\d+\.\d)ms (\S+)$")


def lines(caplog, level=logging.INFO) -> list[tuple[str, ...]]:
    found = []
    for record in caplog.records:
        if record.name == LOGGER and record.levelno == level:
            match = LINE.match(record.getMessage())
            assert match, record.getMessage()
            found.append(match.groups())
    return found


def test_a_write_with_a_key_names_the_key(api, caplog):
    secret = create_api_key(name="ci-executor").secret
    caplog.set_level(logging.INFO, logger=LOGGER)
    response = api.post("/runs/start", {"run": {"run_id": "logged"}}, Authorization=f"Bearer {secret}")
    assert response.status_code == 201
    ((method, path, status, ms, who),) = lines(caplog)
    assert (method, path, status, who) == ("POST", "/runs/start", "201", "key:ci-executor")
    assert float(ms) >= 0


def test_the_bootstrap_key_is_named_as_its_variable(api, caplog, settings):
    settings.AUTOPACK_API_KEY = "bootstrap-secret"
    caplog.set_level(logging.INFO, logger=LOGGER)
    api.post("/runs/start", {"run": {"run_id": "boot"}}, X_API_Key="bootstrap-secret")
    assert [line[4] for line in lines(caplog)] == ["key:AUTOPACK_API_KEY"]


def test_a_logged_in_user_is_named(client, caplog, settings):
    settings.AUTOPACK_REQUIRE_LOGIN = True
    client.force_login(User.objects.create_user("alice", is_staff=True))
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert client.get("/dashboard/runs/?state=active").status_code == 200
    assert [(m, p, s, who) for m, p, s, _, who in lines(caplog)] == [
        ("GET", "/dashboard/runs/?state=active", "200", "user:alice")
    ]


def test_an_anonymous_request_is_a_dash_and_loads_no_session(caplog, django_assert_num_queries):
    caplog.set_level(logging.INFO, logger=LOGGER)
    client = Client()
    client.cookies["sessionid"] = "not-a-session"
    # Naming who asked reads no session and no user: /healthz still makes no query.
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert "Cookie" not in response.get("Vary", "")
    assert [(m, p, s, who) for m, p, s, _, who in lines(caplog)] == [("GET", "/healthz", "200", "-")]


def test_an_unchanged_poll_is_logged_at_debug_only(api, caplog):
    api.start()
    version = Run.objects.get(run_id="run-1").version
    poll = f"/dashboard/runs/run-1/progress?v={version}"
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.clear()
    assert Client().get(poll).status_code == 204
    assert lines(caplog) == []

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    assert Client().get(poll).status_code == 204
    assert [(m, p, s) for m, p, s, _, _ in lines(caplog, logging.DEBUG)] == [("GET", poll, "204")]
    # A poll that carries a change is an ordinary request.
    assert Client().get(f"/dashboard/runs/run-1/progress?v={version - 1}").status_code == 200
    assert len(lines(caplog)) == 1


def test_a_key_name_cannot_forge_a_log_line(api, caplog):
    secret = create_api_key(name="agent\nGET /admin/ 200 0.1ms key:admin").secret
    caplog.set_level(logging.INFO, logger=LOGGER)
    api.post("/runs/start", {"run": {"run_id": "forged"}}, Authorization=f"Bearer {secret}")
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert "\n" not in record.getMessage()
    assert record.getMessage().endswith("key:'agent\\nGET /admin/ 200 0.1ms key:admin'")
