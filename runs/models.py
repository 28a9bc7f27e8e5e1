"""Runs, tiers and phases as Autopack's executor reports them.

Tokens and issue counts of tiers and runs are derived (sums of their phases) and stored so the
dashboard reads them in one query; `runs.services` keeps them right inside each write.
"""

from django.db import models

from runs.states import (
    COMPLEXITIES,
    DEFAULT_MAX_DURATION_MINUTES,
    DEFAULT_MAX_PHASES,
    DEFAULT_RUN_SCOPE,
    DEFAULT_SAFETY_PROFILE,
    DEFAULT_TOKEN_CAP,
    ISSUE_SEVERITIES,
    RUN_SCOPES,
    SAFETY_PROFILES,
    TERMINAL_RUN_STATES,
    PhaseState,
    RunState,
    TierState,
)


class Run(models.Model):
    run_id = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=40, choices=RunState.choices, default=RunState.RUN_CREATED)
    safety_profile = models.CharField(
        max_length=20, choices=[(p, p) for p in SAFETY_PROFILES], default=DEFAULT_SAFETY_PROFILE
    )
    run_scope = models.CharField(max_length=20, choices=[(s, s) for s in RUN_SCOPES], default=DEFAULT_RUN_SCOPE)
    token_cap = models.BigIntegerField(default=DEFAULT_TOKEN_CAP)
    max_phases = models.PositiveIntegerField(default=DEFAULT_MAX_PHASES)
    max_duration_minutes = models.PositiveIntegerField(default=DEFAULT_MAX_DURATION_MINUTES)
    # The sum of its phases' tokens plus `usage_tokens_without_phase`.
    tokens_used = models.BigIntegerField(default=0)
    # Tokens of usage events that name the run but no phase of it.
    usage_tokens_without_phase = models.BigIntegerField(default=0)
    # What the executor reported (its phases' sums) and what was metered from recorded LLM calls.
    tokens_reported = models.BigIntegerField(default=0)
    tokens_metered = models.BigIntegerField(default=0)
    minor_issues_count = models.PositiveIntegerField(default=0)
    major_issues_count = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True, default="")
    # An optional budget in dollars for the run's LLM calls, as the catalog prices them.
    budget_usd = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    # Pause is a flag, not a state: the executor's state stays as it was, and LlmService refuses the
    # run's calls while `paused_at` is set.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_by = models.CharField(max_length=150, blank=True, default="")
    pause_reason = models.TextField(blank=True, default="")
    # Loaded by `manage.py demo`: labelled as demo data everywhere, and removed by `demo --remove`.
    is_demo = models.BooleanField(default=False)
    # The API key (by name) or the person that started the run; blank for a loopback client.
    started_by = models.CharField(max_length=150, blank=True, default="")
    # Raised by every write to the run or its phases; dashboard polls compare it to skip work.
    version = models.PositiveBigIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "-created_at"], name="run_state_created_idx"),
            models.Index(fields=["-created_at"], name="run_created_idx"),
            models.Index(fields=["-updated_at"], name="run_updated_idx"),
        ]

    def __str__(self):
        return self.run_id

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_RUN_STATES

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class Tier(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tiers")
    tier_id = models.CharField(max_length=100)
    tier_index = models.IntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    state = models.CharField(max_length=20, choices=TierState.choices, default=TierState.PENDING)
    tokens_used = models.BigIntegerField(default=0)
    minor_issues_count = models.PositiveIntegerField(default=0)
    major_issues_count = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tier_index", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "tier_id"], name="tier_id_unique_in_run")]
        indexes = [models.Index(fields=["run", "tier_index"], name="tier_run_index_idx")]

    def __str__(self):
        return f"{self.tier_id} {self.name}"


class Phase(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="phases")
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="phases")
    phase_id = models.CharField(max_length=100)
    phase_index = models.IntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    task_category = models.CharField(max_length=100, blank=True, default="")
    complexity = models.CharField(max_length=10, choices=[(c, c) for c in COMPLEXITIES], blank=True, default="")
    builder_mode = models.CharField(max_length=100, blank=True, default="")
    state = models.CharField(max_length=20, choices=PhaseState.choices, default=PhaseState.QUEUED)
    builder_attempts = models.PositiveIntegerField(default=0)
    auditor_attempts = models.PositiveIntegerField(default=0)
    # The effective figure: the larger of what the executor reported and the usage events' sum.
    tokens_used = models.BigIntegerField(default=0)
    reported_tokens = models.BigIntegerField(default=0)
    usage_tokens = models.BigIntegerField(null=True, blank=True)
    # Effective counts: distinct recorded issues once there are any, else the reported counts.
    minor_issues_count = models.PositiveIntegerField(default=0)
    major_issues_count = models.PositiveIntegerField(default=0)
    reported_minor_issues = models.PositiveIntegerField(default=0)
    reported_major_issues = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tier__tier_index", "phase_index", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "phase_id"], name="phase_id_unique_in_run")]
        indexes = [
            models.Index(fields=["tier", "phase_index"], name="phase_tier_index_idx"),
            models.Index(fields=["run", "version"], name="phase_run_version_idx"),
        ]

    def __str__(self):
        return f"{self.phase_id} {self.name}"


class PhaseIssue(models.Model):
    """One distinct issue of a phase: repeats of its key raise `occurrences`, not the counts."""

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="issues")
    issue_key = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=[(s, s) for s in ISSUE_SEVERITIES])
    source = models.CharField(max_length=100, blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    evidence_refs = models.JSONField(default=list, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["first_seen_at", "id"]
        constraints = [models.UniqueConstraint(fields=["phase", "issue_key"], name="issue_key_unique_in_phase")]

    def __str__(self):
        return f"{self.issue_key} ({self.severity})"


class UnclaimedUsage(models.Model):
    """Tokens of usage events that named a run before it was started; `start_run` claims them."""

    run_id = models.CharField(max_length=200)
    phase_id = models.CharField(max_length=100, blank=True, default="")
    tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run_id", "phase_id"], name="unclaimed_usage_unique")]

    def __str__(self):
        return f"{self.run_id} {self.phase_id}: {self.tokens}"


class RunEvent(models.Model):
    """One entry of a run's history, written by the service that made the change in its transaction.

    `action` is "state" for a state change a report or the server made, or what a person did (pause,
    resume, cancel, retry, skip, approve). `phase_id` is blank for the run itself.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20)
    phase_id = models.CharField(max_length=100, blank=True, default="")
    from_state = models.CharField(max_length=40, blank=True, default="")
    to_state = models.CharField(max_length=40, blank=True, default="")
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["run", "created_at"], name="run_event_run_created_idx")]

    def __str__(self):
        return f"{self.run_id} {self.action} {self.phase_id} {self.from_state}→{self.to_state}"


class RunReservation(models.Model):
    """An LLM call in flight: its estimated tokens and price, held against the run's budgets until it settles.

    A reservation whose process died is ignored after `expires_at`.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="reservations")
    tokens = models.BigIntegerField()
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["run", "expires_at"], name="run_reservation_live_idx")]

    def __str__(self):
        return f"{self.run_id}: {self.tokens} tokens, ${self.cost_usd}"
