"""`GET /metrics`: requests, database errors, usage recorded, alerts raised and cooldowns, for operators only."""

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from apikeys.services import create_api_key
from routing.services import put_in_cooldown
from tests.usage.conftest import event

pytestmark = pytest.mark.django_db

HEALTHZ_OK = ("autopack_http_request_duration_seconds_count", {"view": "healthz", "method": "GET", "status": "200"})


def scrape(client=None) -> dict[tuple[str, frozenset], float]:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(figures, name: str, labels: dict | None = None) -> float:
    """A sample's value; 0 for a series not seen yet, as Prometheus reads a counter that has not started."""
    return figures.get((name, frozenset((labels or {}).items())), 0)


def delta(before, after, name: str, labels: dict | None = None) -> float:
    return value(after, name, labels) - value(before, name, labels)


def test_requests_are_counted_by_route_name_method_and_status(api):
    before = scrape()
    for _ in range(3):
        assert Client().get("/healthz").status_code == 200
    assert Client().get("/no/such/page").status_code == 404
    assert api.post("/runs/start", {"run": {}}).status_code == 400
    after = scrape()
    assert delta(before, after, *HEALTHZ_OK) == 3
    assert delta(before, after, "autopack_http_request_duration_seconds_sum", HEALTHZ_OK[1]) > 0
    # A healthz answers within a second, so every one of them is in the one-second bucket.
    assert delta(before, after, "autopack_http_request_duration_seconds_bucket", {**HEALTHZ_OK[1], "le": "1.0"}) == 3
    unmatched = {"view": "unmatched", "method": "GET", "status": "404"}
    assert delta(before, after, "autopack_http_request_duration_seconds_count", unmatched) == 1
    refused = {"view": "api-run-start", "method": "POST", "status": "400"}
    assert delta(before, after, "autopack_http_request_duration_seconds_count", refused) == 1


def test_an_unknown_method_is_counted_as_other():
    before = scrape()
    Client().generic("BREW", "/healthz")
    after = scrape()
    other = {"view": "healthz", "method": "other", "status": "405"}
    assert delta(before, after, "autopack_http_request_duration_seconds_count", other) == 1


def test_usage_events_count_once_stored_and_never_for_a_duplicate(api, django_capture_on_commit_callbacks):
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/usage", event(request_id="m-1")).status_code == 201
        assert api.post("/api/usage", {"events": [event(request_id="m-2"), event(request_id="m-3")]}).status_code == 201
        # The same call again: recognised as a duplicate, stored once.
        assert api.post("/api/usage", event(request_id="m-1")).status_code == 200
    assert delta(before, scrape(), "autopack_usage_events_recorded_total") == 3


def test_a_cooldown_counts_one_alert_and_shows_while_it_lasts(django_capture_on_commit_callbacks):
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        put_in_cooldown(provider="openai", reason="HTTP 429", retry_after=60)
        # A second failure lengthens the cooldown and raises no new alert.
        put_in_cooldown(provider="openai", reason="HTTP 429", retry_after=120)
    after = scrape()
    assert delta(before, after, "autopack_alerts_raised_total", {"kind": "cooldown"}) == 1
    assert value(after, "autopack_providers_cooling_down") == 1
    assert 110 < value(after, "autopack_provider_cooldown_seconds", {"provider": "openai"}) <= 120
    assert value(after, "autopack_alerts_open") == 1
    assert value(after, "autopack_database_up") == 1


def test_database_errors_are_counted_and_the_scrape_still_answers(monkeypatch):
    before = scrape()

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)
    assert Client(raise_request_exception=False).get("/runs/").status_code == 503
    assert Client().get("/healthz").status_code == 503
    after = scrape()
    # The counters are read before the database is tried, so this scrape's own failure shows in the next one.
    assert delta(before, after, "autopack_database_errors_total", {"error": "OperationalError"}) == 2
    assert value(after, "autopack_database_up") == 0
    assert ("autopack_providers_cooling_down", frozenset()) not in after


def test_a_scraper_may_ask_for_openmetrics():
    response = Client().get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.content.endswith(b"# EOF\n")


def test_a_client_off_loopback_without_a_key_is_refused():
    response = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert response.status_code == 403
    assert response.json() == {"error": "Metrics are served to loopback clients and to API keys only", "details": {}}


def test_a_request_relayed_by_a_proxy_on_this_host_is_not_loopback():
    response = Client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403


def test_a_live_key_may_scrape_from_anywhere_and_a_wrong_one_may_not(settings):
    secret = create_api_key(name="prometheus").secret
    assert (
        Client(REMOTE_ADDR="10.1.2.3").get("/metrics", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )
    wrong = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", headers={"Authorization": "Bearer apk_wrong"})
    assert wrong.status_code == 401


def test_metrics_need_no_login_when_logins_are_required(settings):
    settings.AUTOPACK_REQUIRE_LOGIN = True
    assert Client().get("/metrics").status_code == 200
