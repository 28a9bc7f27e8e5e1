"""LLM usage: one row per call, and exact rollups kept in the same transaction as the events.

Token fields never overlap: `prompt_tokens` counts all input (cached included), of which
`cached_prompt_tokens` came from cache; `completion_tokens` counts all output (reasoning included),
of which `reasoning_tokens` was reasoning; `total_tokens` = prompt + completion when both are known.
"""

from django.db import models


class LlmUsageEvent(models.Model):
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    role = models.CharField(max_length=100)
    run_id = models.CharField(max_length=200, blank=True, default="")
    phase_id = models.CharField(max_length=100, blank=True, default="")
    # Null when the provider reported only a total.
    prompt_tokens = models.BigIntegerField(null=True, blank=True)
    completion_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField()
    cached_prompt_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    # Priced from the model catalog when recorded; null when the model has no price.
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=[("ok", "ok"), ("error", "error")], default="ok")
    # Unique when given (see Meta): replaying an event with the same request_id records nothing.
    request_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - many events have none
    created_at = models.DateTimeField()
    # The router's decision for this call: model asked for, model used, why, quota figures seen.
    decision = models.JSONField(null=True, blank=True)
    # Demo data: shown as such, never in a quota, a routing decision, a forecast or a provider total
    # (so never in UsageBucket), and removed whole by `demo --remove`.
    is_demo = models.BooleanField(default=False)
    # The API key (by name) or the person that sent the event; blank for a loopback client or a file.
    sent_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        # A constraint rather than unique=True: on PostgreSQL that would add a second index on the
        # column for LIKE queries nobody makes, which every insert of a large import pays for.
        constraints = [models.UniqueConstraint(fields=["request_id"], name="usage_request_id_unique")]
        indexes = [
            models.Index(fields=["created_at"], name="usage_created_idx"),
            models.Index(fields=["run_id", "created_at"], name="usage_run_created_idx"),
            models.Index(fields=["created_at"], condition=models.Q(is_demo=True), name="usage_demo_idx"),
        ]

    def __str__(self):
        return f"{self.provider}/{self.model} {self.role} {self.total_tokens}"


class UsageBucket(models.Model):
    """Totals of whole hours and whole days: the aggregation reads these for the inside of a window."""

    HOUR, DAY = "hour", "day"

    size = models.CharField(max_length=4, choices=[(HOUR, HOUR), (DAY, DAY)])
    start = models.DateTimeField()
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    role = models.CharField(max_length=100)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["size", "start", "provider", "model", "role"], name="usage_bucket_unique")
        ]

    def __str__(self):
        return f"{self.size} {self.start:%Y-%m-%d %H:00} {self.provider}/{self.model} {self.role}"


class RunUsageBucket(models.Model):
    """Hourly totals per run and phase, for the top runs and phases of a window."""

    start = models.DateTimeField()
    run_id = models.CharField(max_length=200)
    phase_id = models.CharField(max_length=100)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "run_id", "phase_id"], name="run_usage_bucket_unique")]
        # A run's own figures (its cost on the runs page) without reading every hour of every run.
        indexes = [models.Index(fields=["run_id", "start"], name="run_usage_run_idx")]

    def __str__(self):
        return f"{self.start:%Y-%m-%d %H:00} {self.run_id}/{self.phase_id}"


class KeyUsageBucket(models.Model):
    """Hourly totals per sender (an API key's name, a person, or blank for loopback clients and files),
    for usage by key. Demo calls are left out, as from UsageBucket."""

    start = models.DateTimeField()
    sent_by = models.CharField(max_length=150, blank=True, default="")
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "sent_by"], name="key_usage_bucket_unique")]

    def __str__(self):
        return f"{self.start:%Y-%m-%d %H:00} {self.sent_by or 'no key'}"


class UsageRetention(models.Model):
    """One row: how far raw events have been pruned. Hours before it may have lost events."""

    pruned_before = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"pruned before {self.pruned_before}" if self.pruned_before else "nothing pruned"


class PrunedRequest(models.Model):
    """A pruned event's request_id and a digest of its figures, so a late replay is still recognised."""

    request_id = models.CharField(max_length=200, primary_key=True)
    figures_digest = models.CharField(max_length=64)

    def __str__(self):
        return self.request_id
