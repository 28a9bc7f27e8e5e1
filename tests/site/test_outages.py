"""An outage (the database away, a broken models.yaml) is a 503 that says when to retry."""

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_away(monkeypatch):
    """Every new query fails as it does while the database restarts."""

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)


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
