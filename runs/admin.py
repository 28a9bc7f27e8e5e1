"""Runs in the admin: browsable with tiers and phases inline.

States, figures and ids are read-only here: they change only through `runs.services`, which keeps
tier states, run finalisation and token sums consistent.
"""

from django.contrib import admin

from runs.models import Phase, PhaseIssue, Run, Tier

DERIVED = ("state", "tokens_used", "minor_issues_count", "major_issues_count", "started_at", "completed_at")


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0
    can_delete = False
    fields = ("tier_id", "tier_index", "name", "description", *DERIVED)
    readonly_fields = ("tier_id", "tier_index", *DERIVED)

    def has_add_permission(self, request, obj=None):
        return False


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0
    can_delete = False
    fields = (
        "phase_id",
        "phase_index",
        "tier",
        "name",
        "task_category",
        "complexity",
        "builder_mode",
        "builder_attempts",
        "auditor_attempts",
        *DERIVED,
    )
    readonly_fields = ("phase_id", "phase_index", "tier", "builder_attempts", "auditor_attempts", *DERIVED)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("run_id", "state", "tokens_used", "token_cap", "major_issues_count", "created_at")
    list_filter = ("state", "safety_profile", "run_scope")
    search_fields = ("run_id",)
    date_hierarchy = "created_at"
    readonly_fields = ("run_id", "created_at", "updated_at", "version", *DERIVED)
    fields = (
        "run_id",
        "state",
        "safety_profile",
        "run_scope",
        "token_cap",
        "max_phases",
        "max_duration_minutes",
        "tokens_used",
        "minor_issues_count",
        "major_issues_count",
        "failure_reason",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "version",
    )
    inlines = [TierInline, PhaseInline]

    def has_add_permission(self, request):
        # Runs arrive from the executor through POST /runs/start, which checks the whole plan.
        return False


@admin.register(PhaseIssue)
class PhaseIssueAdmin(admin.ModelAdmin):
    list_display = ("issue_key", "severity", "source", "category", "occurrences", "phase", "last_seen_at")
    list_filter = ("severity", "source")
    search_fields = ("issue_key", "phase__phase_id", "phase__run__run_id")
    readonly_fields = [f.name for f in PhaseIssue._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
