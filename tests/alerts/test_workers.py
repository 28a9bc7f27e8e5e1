"""Webhook delivery and the sweep run by real `db_worker` processes on the test database."""

import datetime as dt

import pytest

from alerts.models import Alert
from alerts.services import raise_alert
from alerts.sweep import sweep_alerts
from autopack_site import clock
from tests.alerts.conftest import wait_for
from tests.usage.conftest import event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db(transaction=True)


def an_alert(subject: str) -> Alert:
    now = clock.now()
    return raise_alert(kind=Alert.Kind.RUN_FAILED, subject=subject, threshold=0, window_start=now, message=subject)


def test_a_failing_webhook_is_retried_with_backoff_and_a_silent_one_gives_up(webhook, workers):
    webhook.plan = {"flaky": [500, 503], "silent": ["silent"] * 3}
    flaky, silent = an_alert("flaky"), an_alert("silent")
    worker = workers(
        "--interval",
        "0.1",
        AUTOPACK_ALERT_RETRY_SECONDS="0.3",
        AUTOPACK_ALERT_WEBHOOK_TIMEOUT="0.5",
        AUTOPACK_ALERT_ATTEMPTS="3",
    )

    def settled():
        return Alert.objects.filter(delivery__in=("sent", "failed")).count() == 2

    wait_for(settled, seconds=30, what="both deliveries to settle")
    flaky.refresh_from_db()
    silent.refresh_from_db()
    assert flaky.delivery == "sent" and flaky.delivery_attempts == 3
    assert [entry["outcome"] for entry in flaky.delivery_log] == [
        "HTTP 500: unavailable",
        "HTTP 503: unavailable",
        "sent",
    ]
    # Backoff: 0.3 s before the second attempt, twice that before the third.
    times = [dt.datetime.fromisoformat(entry["at"]) for entry in flaky.delivery_log]
    assert times[1] - times[0] >= dt.timedelta(seconds=0.3) and times[2] - times[1] >= dt.timedelta(seconds=0.6)
    assert silent.delivery == "failed" and silent.delivery_attempts == 3
    assert {entry["outcome"] for entry in silent.delivery_log} == {"no answer within 0.5 s"}
    assert webhook.subjects().count("flaky") == 3
    assert worker.poll() is None


@pytest.mark.postgres_only
def test_two_workers_raise_and_send_each_quota_alert_once(models_config, webhook, workers):
    assert record_usage_events([event(prompt_tokens=950, completion_tokens=0, request_id="a")], atomic_batch=True)
    for _ in range(8):
        sweep_alerts.enqueue()
    first, second = workers("--batch", "--worker-id", "one"), workers("--batch", "--worker-id", "two")
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    alerts = Alert.objects.filter(kind=Alert.Kind.QUOTA).order_by("threshold")
    assert [(a.threshold, a.delivery) for a in alerts] == [(80, "sent"), (90, "sent")]
    assert sorted(webhook.subjects()) == ["openai day", "openai day"]
    assert sorted(body["threshold"] for body in webhook.received) == [80, 90]
