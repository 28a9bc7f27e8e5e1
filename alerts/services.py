"""Raising and acknowledging alerts, and the reads the dashboard, the JSON list and the admin share."""

import datetime as dt
import functools

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q

from alerts.delivery import enqueue_delivery
from alerts.models import Alert
from autopack_site import clock, metrics
from autopack_site.errors import InvalidInput, NotFound

# What GET /dashboard/alerts may list, newest first, and how many at most.
ALERT_STATES = ("open", "acknowledged", "all")
LIST_LIMIT = 200
PANEL_LIMIT = 20


def raise_alert(
    *,
    kind: str,
    subject: str,
    threshold: int,
    window_start: dt.datetime,
    message: str,
    run_id: str = "",
    phase_id: str = "",
    provider: str = "",
) -> Alert | None:
    """Record the alert unless this (kind, subject, threshold, window start) was raised before; None then.

    A new alert is queued for the webhook once its transaction commits, so a rolled-back one sends nothing.
    """
    now = clock.now()
    webhook = bool(settings.AUTOPACK_ALERT_WEBHOOK_URL)
    try:
        # A savepoint: when another worker raised it first, the caller's transaction goes on.
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=kind,
                subject=subject[:320],
                threshold=threshold,
                window_start=window_start,
                message=message,
                run_id=run_id,
                phase_id=phase_id,
                provider=provider,
                raised_at=now,
                updated_at=now,
                delivery=Alert.Delivery.PENDING if webhook else Alert.Delivery.NONE,
            )
    except IntegrityError:
        return None
    transaction.on_commit(functools.partial(metrics.count_alert, kind))
    if webhook:
        transaction.on_commit(functools.partial(enqueue_delivery, alert.pk, 1))
    return alert


@transaction.atomic
def acknowledge_alert(*, alert_id: int, by: str) -> Alert:
    """Mark an alert seen by `by`; acknowledging it again keeps the first who and when."""
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(f"Alert {alert_id} not found")
    if alert.acknowledged_at is None:
        now = clock.now()
        alert.acknowledged_at, alert.acknowledged_by, alert.updated_at = now, by[:150], now
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
    return alert


def alerts_in_state(state: str):
    if state not in ALERT_STATES:
        raise InvalidInput("Invalid state", {"state": f"must be one of: {', '.join(ALERT_STATES)}"})
    alerts = Alert.objects.all()
    if state == "open":
        alerts = alerts.filter(acknowledged_at__isnull=True)
    elif state == "acknowledged":
        alerts = alerts.filter(acknowledged_at__isnull=False)
    return alerts.order_by("-raised_at", "-id")


def alerts_version() -> tuple[int, str]:
    """How many alerts are open, and a version any raise, acknowledgement or delivery attempt changes. One query."""
    seen = Alert.objects.aggregate(
        open=Count("id", filter=Q(acknowledged_at__isnull=True)), count=Count("id"), changed=Max("updated_at")
    )
    changed = seen["changed"].timestamp() if seen["changed"] else 0
    return seen["open"], f"{seen['open']}.{seen['count']}.{changed:.6f}"
