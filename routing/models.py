"""Model overrides chosen by people, the log of their changes, and provider cooldowns.

The YAML file is the baseline and is never written; these rows sit on top of it.
"""

from django.db import models
from django.db.models import Q

from routing.config import COMPLEXITIES, ROLES


class ModelOverride(models.Model):
    GLOBAL, RUN = "global", "run"

    scope = models.CharField(max_length=10, choices=[(GLOBAL, "global"), (RUN, "run")], default=GLOBAL)
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="overrides")
    role = models.CharField(max_length=10, choices=[(r, r) for r in ROLES])
    # Blank means any; category "general" is a phase with no special category.
    category = models.CharField(max_length=100, blank=True, default="")
    complexity = models.CharField(max_length=10, blank=True, default="", choices=[(c, c) for c in COMPLEXITIES])
    model = models.CharField(max_length=100)
    note = models.TextField(blank=True, default="")
    changed_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Two conditional constraints: a NULL run would let duplicate global rows past one constraint.
            models.UniqueConstraint(
                fields=["role", "category", "complexity"],
                condition=Q(scope="global"),
                name="override_unique_global",
                violation_error_message="A global override for this role, category and complexity already exists.",
            ),
            models.UniqueConstraint(
                fields=["run", "role", "category", "complexity"],
                condition=Q(scope="run"),
                name="override_unique_per_run",
                violation_error_message="This run already has an override for this role, category and complexity.",
            ),
            models.CheckConstraint(
                condition=Q(scope="global", run__isnull=True) | Q(scope="run", run__isnull=False),
                name="override_scope_matches_run",
            ),
        ]
        ordering = ["scope", "role", "category", "complexity"]

    def __str__(self):
        where = f"run {self.run.run_id}" if self.run_id else "global"
        return f"{where}: {self.role} {self.category or 'any'}/{self.complexity or 'any'} → {self.model}"

    @property
    def specificity(self) -> int:
        """Category and complexity (3) beat category (2), which beats complexity (1), which beats any (0)."""
        return 2 * bool(self.category) + bool(self.complexity)


class OverrideChange(models.Model):
    """One change to an override, whoever made it and wherever (admin, dashboard, API)."""

    action = models.CharField(max_length=10, choices=[("set", "set"), ("reset", "reset")])
    scope = models.CharField(max_length=10)
    run_id = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=10)
    category = models.CharField(max_length=100, blank=True, default="")
    complexity = models.CharField(max_length=10, blank=True, default="")
    old_model = models.CharField(max_length=100, blank=True, default="")
    new_model = models.CharField(max_length=100, blank=True, default="")
    changed_by = models.CharField(max_length=150, blank=True, default="")
    via = models.CharField(max_length=20)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.role} {self.category}/{self.complexity}"


class ProviderCooldown(models.Model):
    """A provider that failed a call (429, 5xx, timeout, no connection, malformed answer): avoided until `until`,
    on every machine."""

    provider = models.CharField(max_length=50, unique=True)
    until = models.DateTimeField()
    reason = models.CharField(max_length=300)
    failures = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField()

    def __str__(self):
        return f"{self.provider} until {self.until:%H:%M:%S}"
