"""Alerts: one row per event worth telling a person about, raised once and kept until acknowledged.

The unique constraint is what makes "once" hold: every sweep, on every worker, may try to raise the
same alert, and only the first insert of a (kind, subject, threshold, window start) succeeds.
"""

from django.db import models
from django.db.models import Q


class Alert(models.Model):
    class Kind(models.TextChoices):
        QUOTA = "quota", "provider quota"
        RUN_TOKENS = "run_tokens", "run token cap"
        RUN_BUDGET = "run_budget", "run dollar budget"
        RUN_TIME = "run_time", "run time limit"
        RUN_FAILED = "run_failed", "run failed"
        PHASE_STUCK = "phase_stuck", "phase looks stuck"
        COOLDOWN = "cooldown", "provider in cooldown"

    class Delivery(models.TextChoices):
        # No webhook was configured when the alert was raised.
        NONE = "none"
        PENDING = "pending"
        SENDING = "sending"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What the alert is about: "openai day", "run-1", "run-1 P3", "anthropic".
    subject = models.CharField(max_length=320)
    # The percentage crossed (quotas, caps, budgets), the stuck minutes, or 0 for an event.
    threshold = models.PositiveIntegerField(default=0)
    # Which crossing this is: the quota window's start, the run's creation, the phase's last activity.
    window_start = models.DateTimeField()
    message = models.TextField()
    run_id = models.CharField(max_length=200, blank=True, default="")
    phase_id = models.CharField(max_length=100, blank=True, default="")
    provider = models.CharField(max_length=50, blank=True, default="")
    raised_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.NONE)
    delivery_attempts = models.PositiveIntegerField(default=0)
    # One entry per attempt: {"attempt", "at", "outcome"}, outcome "sent" or what went wrong.
    delivery_log = models.JSONField(default=list, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Raised by every change: the dashboard's poll compares it to skip work.
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject", "threshold", "window_start"], name="alert_once_per_crossing"
            )
        ]
        indexes = [
            models.Index(fields=["-raised_at"], condition=Q(acknowledged_at__isnull=True), name="alert_open_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject} ({self.threshold})"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def as_json(self) -> dict:
        def when(moment):
            return moment.isoformat() if moment else None

        return {
            "id": self.pk,
            "kind": self.kind,
            "subject": self.subject,
            "threshold": self.threshold,
            "window_start": when(self.window_start),
            "message": self.message,
            "run_id": self.run_id or None,
            "phase_id": self.phase_id or None,
            "provider": self.provider or None,
            "raised_at": when(self.raised_at),
            "acknowledged_at": when(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by or None,
            "delivery": self.delivery,
            "delivery_attempts": self.delivery_attempts,
            "delivery_log": self.delivery_log,
            "delivered_at": when(self.delivered_at),
            "next_attempt_at": when(self.next_attempt_at),
        }


class SweepSchedule(models.Model):
    """One row: when the next sweep is due. A sweep task due at another time is a stray and stops.

    This keeps one chain of sweeps however often `start_alert_sweep` runs or workers restart.
    """

    next_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"next sweep at {self.next_at}" if self.next_at else "no sweep scheduled"
