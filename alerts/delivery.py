"""Webhook delivery of alerts, as tasks: one attempt per task, a failed one re-enqueued with `run_after`.

Each attempt is claimed on the alert's row before anything is sent, so a task that runs twice (a second
worker, a stray retry) finds its attempt taken and sends nothing.
"""

import datetime as dt
import json
import urllib.error
import urllib.request

from django.conf import settings
from django.db import transaction
from django_tasks import task

from alerts.models import Alert
from autopack_site import clock

# The longest wait between two attempts, whatever the doubling reaches.
MAX_RETRY_SECONDS = 3600
# What a webhook's error body may add to an attempt's outcome.
ERROR_CHARS = 200
# What the alert's row says about people and delivery, left out of what is delivered.
DELIVERY_FIELDS = frozenset(
    {"acknowledged_at", "acknowledged_by", "delivery", "delivery_attempts", "delivery_log", "delivered_at"}
    | {"next_attempt_at"}
)


def enqueue_delivery(alert_id: int, attempt: int, at: dt.datetime | None = None) -> None:
    """Queue attempt `attempt` of an alert's delivery, not before `at`."""
    deliver = deliver_alert
    # A backend that cannot defer (the immediate one, in tests) makes the attempt at once.
    if at is not None and deliver.get_backend().supports_defer:
        deliver = deliver.using(run_after=at)
    deliver.enqueue(alert_id, attempt)


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after `attempt`: the configured first delay, doubled each time."""
    return min(settings.AUTOPACK_ALERT_RETRY_SECONDS * 2 ** (attempt - 1), MAX_RETRY_SECONDS)


def webhook_body(alert: Alert) -> dict:
    """A Slack-compatible `text`, and the alert's fields beside it for other receivers."""
    fields = {name: value for name, value in alert.as_json().items() if name not in DELIVERY_FIELDS}
    return {"text": f"Autopack: {alert.message}", **fields}


@task()
def deliver_alert(alert_id: int, attempt: int) -> str:
    """Post the alert to AUTOPACK_ALERT_WEBHOOK_URL once; on failure queue the next attempt, or give up."""
    alert = _claim(alert_id, attempt)
    if alert is None:
        return "skipped"
    failure = post_json(settings.AUTOPACK_ALERT_WEBHOOK_URL, webhook_body(alert))
    return _record(alert_id, attempt, failure)


def post_json(url: str, body: dict) -> str | None:
    """POST `body` to `url`; None when it answered 2xx, else what went wrong."""
    if not url.startswith(("http://", "https://")):
        return "AUTOPACK_ALERT_WEBHOOK_URL is not an http(s) URL"
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "autopack-dashboard"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.AUTOPACK_ALERT_WEBHOOK_TIMEOUT):  # noqa: S310
            return None
    except urllib.error.HTTPError as exc:
        detail = exc.read(ERROR_CHARS).decode(errors="replace").strip()
        return f"HTTP {exc.code}" + (f": {detail}" if detail else "")
    except TimeoutError:
        return f"no answer within {settings.AUTOPACK_ALERT_WEBHOOK_TIMEOUT:g} s"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return f"no answer within {settings.AUTOPACK_ALERT_WEBHOOK_TIMEOUT:g} s"
        return f"could not connect: {reason}"


@transaction.atomic
def _claim(alert_id: int, attempt: int) -> Alert | None:
    # Lock the alert: two workers may hold tasks for the same attempt; only one may send it.
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None or alert.delivery not in (Alert.Delivery.PENDING, Alert.Delivery.RETRYING):
        return None
    if alert.delivery_attempts != attempt - 1:
        return None
    alert.delivery = Alert.Delivery.SENDING
    alert.delivery_attempts = attempt
    alert.next_attempt_at = None
    alert.updated_at = clock.now()
    alert.save(update_fields=["delivery", "delivery_attempts", "next_attempt_at", "updated_at"])
    return alert


@transaction.atomic
def _record(alert_id: int, attempt: int, failure: str | None) -> str:
    alert = Alert.objects.select_for_update().get(pk=alert_id)
    now = clock.now()
    alert.delivery_log = [
        *alert.delivery_log,
        {"attempt": attempt, "at": now.isoformat(), "outcome": failure or "sent"},
    ]
    if failure is None:
        alert.delivery, alert.delivered_at = Alert.Delivery.SENT, now
    elif attempt < settings.AUTOPACK_ALERT_ATTEMPTS:
        alert.delivery = Alert.Delivery.RETRYING
        alert.next_attempt_at = now + dt.timedelta(seconds=retry_delay(attempt))
        next_at = alert.next_attempt_at
        transaction.on_commit(lambda: enqueue_delivery(alert_id, attempt + 1, next_at))
    else:
        alert.delivery = Alert.Delivery.FAILED
    alert.updated_at = now
    alert.save()
    return alert.delivery
