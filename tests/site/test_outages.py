"""An outage (the database away, a broken models.yaml) is a 503 that says when to retry."""

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client

from autopack_site import gunicorn_conf

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_away(monkeypatch):
    """Every new query fails as it does while the database restarts; returns the list of attempts to connect."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(1)
        raise OperationalError("connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)
    return attempts


@pytest.fixture
def raising_client():
    # The handler500 answer, as a served request gets it, instead of the exception in the test.
    return Client(raise_request_exception=False)


@pytest.mark.usefixtures("database_away")
def test_healthz_is_503_with_retry_after():
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == "Database unavailable"


@pytest.mark.usefixtures("database_away")
def test_an_api_call_is_503_json_with_retry_after(raising_client):
    response = raising_client.get("/runs/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"error": "Database unavailable; try again shortly", "details": {}}


@pytest.mark.usefixtures("database_away")
def test_a_page_is_a_short_page_that_retries_by_itself(raising_client):
    response = raising_client.get("/dashboard/", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert '<meta http-equiv="refresh" content="5">' in page and "Reconnecting" in page


@pytest.mark.usefixtures("database_away")
def test_a_polled_fragment_gets_json_not_a_page(raising_client):
    response = raising_client.get("/dashboard/usage/panel", headers={"Accept": "text/html", "HX-Request": "true"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"].startswith("Database unavailable")


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("get", "/healthz", {}),
        ("get", "/runs/", {}),
        ("post", "/api/usage", {}),
        ("post", "/runs/start", {}),
        ("get", "/dashboard/", {"Accept": "text/html"}),
        ("get", "/dashboard/usage/panel", {"Accept": "text/html", "HX-Request": "true"}),
    ],
)
def test_a_request_tries_to_connect_once_while_the_database_is_away(
    raising_client, database_away, method, url, headers
):
    if method == "post":
        response = raising_client.post(url, "{}", content_type="application/json", headers=headers)
    else:
        response = raising_client.get(url, headers=headers)
    assert response.status_code == 503
    # So a database that hangs rather than refuses holds a request for one connect_timeout at most.
    assert database_away == [1]


@pytest.mark.postgres_only
def test_one_attempt_to_connect_gives_up_well_inside_the_worker_timeout(settings):
    assert settings.DATABASES["default"]["OPTIONS"]["connect_timeout"] * 2 <= gunicorn_conf.timeout


@pytest.mark.parametrize("url", ["/dashboard/", "/docs", "/login/", "/admin/"])
def test_a_logged_in_page_is_the_reconnecting_page_when_the_session_cannot_be_read(raising_client, request, url):
    # The session's user is read outside the view: by the middleware, by the login view, by the
    # templates' context (the API docs' view itself needs no database).
    raising_client.force_login(User.objects.create_user("dana", password="x", is_staff=True, is_superuser=True))
    request.getfixturevalue("database_away")
    response = raising_client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert '<meta http-equiv="refresh" content="5">' in response.content.decode()


def test_with_logins_required_the_login_check_is_503_not_a_500(raising_client, request, settings):
    settings.AUTOPACK_REQUIRE_LOGIN = True
    raising_client.force_login(User.objects.create_user("dana", password="x", is_staff=True))
    request.getfixturevalue("database_away")
    response = raising_client.get("/dashboard/usage/panel", headers={"Accept": "text/html", "HX-Request": "true"})
    assert response.status_code == 503
    assert response.json()["error"].startswith("Database unavailable")


def test_a_broken_models_yaml_is_503_with_retry_after(api, models_config, tmp_path, settings):
    broken = tmp_path / "broken.yaml"
    broken.write_text("complexity_models: [")
    settings.AUTOPACK_MODELS_CONFIG = str(broken)
    response = api.get("/dashboard/models")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == "config/models.yaml has problems; fix them and retry"


@pytest.mark.parametrize("url", ["/healthz", "/health"])
def test_health_answers_ok_when_the_database_answers(url):
    assert Client().get(url).json() == {"status": "ok"}


@pytest.mark.usefixtures("database_away")
def test_a_request_that_met_the_database_away_is_logged_in_one_line(raising_client, caplog):
    with caplog.at_level("ERROR", logger="django.request"):
        raising_client.get("/runs/")
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is None
    assert "database unavailable: connection refused" in record.getMessage()
