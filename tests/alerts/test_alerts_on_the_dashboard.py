import datetime as dt
import re

import pytest
from django.contrib.auth.models import User

from alerts.models import Alert
from alerts.services import acknowledge_alert, raise_alert
from autopack_site import clock
from tests.usage.conftest import NOW

pytestmark = pytest.mark.django_db

FORM = {"HX-Request": "true", "Origin": "http://testserver"}


def an_alert(subject="openai day", threshold=80) -> Alert:
    with clock.frozen_at(NOW):
        return raise_alert(
            kind=Alert.Kind.QUOTA,
            subject=subject,
            threshold=threshold,
            window_start=dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
            message=f"openai is past {threshold}% of its daily cap",
            provider="openai",
        )


def test_the_same_crossing_is_one_row():
    assert an_alert() is not None
    assert an_alert() is None
    assert Alert.objects.count() == 1


def test_the_dashboard_shows_the_open_count_and_the_list(client):
    an_alert(threshold=80)
    an_alert(threshold=90)
    page = client.get("/dashboard/").content.decode()
    assert 'data-open-alerts="2"' in page
    assert "openai is past 90% of its daily cap" in page and page.count(">Acknowledge</button>") == 2


def test_acknowledging_from_the_dashboard_records_who_and_updates_the_badge(client):
    alert = an_alert()
    response = client.post(f"/dashboard/forms/alerts/{alert.pk}/acknowledge", {"by": "Dana"}, headers=FORM)
    assert response.status_code == 200
    page = response.content.decode()
    assert "No open alerts" in page and 'id="alert-badge"' in page and 'data-open-alerts="0"' in page
    alert.refresh_from_db()
    assert alert.acknowledged_by == "Dana" and alert.acknowledged_at is not None


def test_acknowledging_needs_the_dashboards_own_page(client):
    alert = an_alert()
    response = client.post(f"/dashboard/forms/alerts/{alert.pk}/acknowledge", {"by": "Mallory"})
    assert response["X-Refused"] == "true"
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_the_panel_poll_is_an_empty_204_until_something_changes(client):
    an_alert()
    first = client.get("/dashboard/alerts/panel").content.decode()
    version = re.search(r"v=([^\"&]+)\"", first).group(1)
    assert client.get("/dashboard/alerts/panel", {"v": version}).status_code == 204
    acknowledge_alert(alert_id=Alert.objects.get().pk, by="Dana")
    assert client.get("/dashboard/alerts/panel", {"v": version}).status_code == 200


def test_the_json_list_has_open_and_acknowledged_alerts(client):
    first, second = an_alert(threshold=80), an_alert(threshold=90)
    acknowledge_alert(alert_id=first.pk, by="Dana")
    open_alerts = client.get("/dashboard/alerts").json()
    assert open_alerts["open"] == 1 and [a["id"] for a in open_alerts["alerts"]] == [second.pk]
    seen = client.get("/dashboard/alerts", {"state": "acknowledged"}).json()["alerts"]
    assert [(a["id"], a["acknowledged_by"]) for a in seen] == [(first.pk, "Dana")]
    assert len(client.get("/dashboard/alerts", {"state": "all"}).json()["alerts"]) == 2
    refused = client.get("/dashboard/alerts", {"state": "closed"})
    assert refused.status_code == 400 and "state" in refused.json()["details"]


def test_the_admin_acknowledges_through_the_service_and_deletes_nothing(client):
    alert = an_alert()
    admin = User.objects.create_superuser("boss", "boss@example.com", "pw-for-tests")
    client.force_login(admin)
    url = "/admin/alerts/alert/"
    response = client.post(url, {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == "boss"
    assert client.get(f"{url}{alert.pk}/delete/").status_code == 403


def test_an_alert_is_posted_to_the_webhook_once_its_transaction_commits(
    webhook, immediate_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = an_alert()
        assert webhook.received == []
    [body] = webhook.received
    assert body["text"] == "Autopack: openai is past 80% of its daily cap"
    assert (body["kind"], body["subject"], body["threshold"], body["id"]) == ("quota", "openai day", 80, alert.pk)
    alert.refresh_from_db()
    assert alert.delivery == "sent" and alert.delivery_attempts == 1 and alert.delivered_at is not None
