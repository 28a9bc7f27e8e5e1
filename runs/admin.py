"""Runs in the admin: browsable with tiers and phases inline.

States, figures and ids are read-only here: they change only through `runs.services`, which keeps
tier states, run finalisation and token sums consistent. Settings and names the admin may change go
through `edit_run`, and deletions through `delete_run` and `delete_issue`, like every other caller.
"""

from django import forms
from django.contrib import admin

from runs.models import Phase, PhaseIssue, Run, Tier
from runs.services import delete_issue, delete_run, edit_run, run_settings_errors

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


class RunForm(forms.ModelForm):
    def clean(self):
        data = super().clean()
        # The service's own checks, so a bad value comes back on the form instead of failing the save.
        changes = {name: data[name] for name in self.changed_data if name in data}
        for name, reason in run_settings_errors(run=self.instance, changes=changes).items():
            self.add_error(name if name in self.fields else None, reason)
        return data


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Settings and names are edited through `edit_run`, which raises the version open dashboards poll.

    routing/admin.py registers a subclass in this one's place, deleting through
    `routing.services.delete_run` so a run's overrides are reset and logged first: runs may not
    import routing (apps depend downwards only).
    """

    form = RunForm
    list_display = ("run_id", "state", "tokens_used", "token_cap", "major_issues_count", "created_at")
    list_filter = ("state", "safety_profile", "run_scope")
    search_fields = ("run_id",)
    date_hierarchy = "created_at"
    # Pause and resume go through `control_run` (the run page or the API), which writes who and why.
    readonly_fields = (
        "run_id",
        "created_at",
        "updated_at",
        "version",
        "paused_at",
        "paused_by",
        "pause_reason",
        *DERIVED,
    )
    fields = (
        "run_id",
        "state",
        "safety_profile",
        "run_scope",
        "token_cap",
        "max_phases",
        "max_duration_minutes",
        "budget_usd",
        "paused_at",
        "paused_by",
        "pause_reason",
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

    def save_model(self, request, obj, form, change):
        """Writes nothing: save_related hands the run's and its rows' changes to `edit_run` at once."""

    def save_related(self, request, form, formsets, change):
        # Only the changed fields: the run is locked and re-read by the service, so figures an
        # executor wrote since this form was opened are kept, not overwritten with the form's copy.
        changed_rows = {Tier: {}, Phase: {}}
        for formset in formsets:
            # commit=False writes nothing: it lists the changed rows, which the admin's history reads too.
            formset.save(commit=False)
            key = "tier_id" if formset.model is Tier else "phase_id"
            for row, names in formset.changed_objects:
                changed_rows[formset.model][getattr(row, key)] = {name: getattr(row, name) for name in names}
        edit_run(
            run_id=form.instance.run_id,
            changes={name: form.cleaned_data[name] for name in form.changed_data},
            tier_changes=changed_rows[Tier],
            phase_changes=changed_rows[Phase],
        )

    def delete_model(self, request, obj):
        self.delete_run_by_id(request, obj.run_id)

    def delete_queryset(self, request, queryset):
        for run_id in queryset.values_list("run_id", flat=True):
            self.delete_run_by_id(request, run_id)

    def delete_run_by_id(self, request, run_id: str) -> None:
        delete_run(run_id=run_id)


@admin.register(PhaseIssue)
class PhaseIssueAdmin(admin.ModelAdmin):
    """Issues are as the agents recorded them, so they are read-only; a mistaken one may be deleted,
    through `delete_issue`, which brings the phase's, tier's and run's issue counts up to date."""

    list_display = ("issue_key", "severity", "source", "category", "occurrences", "phase", "last_seen_at")
    list_filter = ("severity", "source")
    search_fields = ("issue_key", "phase__phase_id", "phase__run__run_id")
    readonly_fields = [f.name for f in PhaseIssue._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        delete_issue(issue_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for issue_id in queryset.values_list("pk", flat=True):
            delete_issue(issue_id=issue_id)
