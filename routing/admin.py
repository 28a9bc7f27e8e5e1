"""Overrides, cooldowns and the run admin's deletion. Saving and deleting go through the same services
as the dashboard and API, so every change is checked the same way and logged."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from routing.config import ConfigError, get_config
from routing.models import ModelOverride, OverrideChange, ProviderCooldown
from routing.services import delete_run, end_cooldown, reset_override, set_cooldown, set_override
from runs.admin import RunAdmin
from runs.models import Run

# Deleting a run also deletes its run overrides, and each must reach the override log. Runs may not
# import routing, so the Run admin is registered again here, where both are in reach: the same
# RunAdmin, deleting through routing's delete_run, which resets and logs the overrides first.
admin.site.unregister(Run)


@admin.register(Run)
class RunWithOverridesAdmin(RunAdmin):
    def delete_run_by_id(self, request, run_id: str) -> None:
        delete_run(run_id=run_id, deleted_by=request.user.get_username(), via="admin")


class ModelOverrideForm(forms.ModelForm):
    class Meta:
        model = ModelOverride
        fields = ("scope", "run", "role", "category", "complexity", "model", "note")

    def clean_model(self):
        model = self.cleaned_data["model"]
        try:
            known = get_config().model(model) is not None
        except ConfigError as exc:
            raise ValidationError(f"config/models.yaml has problems: {exc}") from None
        if not known:
            raise ValidationError(f"Unknown model {model!r}: it is not in the model catalog.")
        return model

    def clean(self):
        data = super().clean()
        scope, run = data.get("scope"), data.get("run")
        if scope == ModelOverride.RUN and run is None:
            self.add_error("run", "A run override needs its run.")
        if scope == ModelOverride.GLOBAL and run is not None:
            self.add_error("run", "A global override has no run: choose scope “run” or clear the run.")
        return data


@admin.register(ModelOverride)
class ModelOverrideAdmin(admin.ModelAdmin):
    form = ModelOverrideForm
    list_display = ("scope", "run", "role", "category", "complexity", "model", "changed_by", "updated_at")
    list_filter = ("scope", "role", "complexity", "category")
    search_fields = ("model", "category", "run__run_id", "note")
    # A run is picked by typing its run_id (RunAdmin searches run_id), never by its internal number.
    autocomplete_fields = ("run",)

    def save_model(self, request, obj, form, change):
        if change and any(f in form.changed_data for f in ("scope", "run", "role", "category", "complexity")):
            original = ModelOverride.objects.get(pk=obj.pk)
            reset_override(**_keys(original), changed_by=request.user.get_username(), via="admin")
        saved = set_override(
            **_keys(obj), model=obj.model, note=obj.note, changed_by=request.user.get_username(), via="admin"
        )
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    def delete_model(self, request, obj):
        reset_override(**_keys(obj), changed_by=request.user.get_username(), via="admin")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def _keys(obj: ModelOverride) -> dict:
    return {
        "scope": obj.scope,
        "run_id": obj.run.run_id if obj.run_id else None,
        "role": obj.role,
        "category": obj.category,
        "complexity": obj.complexity,
    }


@admin.register(OverrideChange)
class OverrideChangeAdmin(admin.ModelAdmin):
    """The override log is read-only: it records who changed what, so nobody may rewrite it."""

    list_display = (
        "created_at",
        "action",
        "scope",
        "run_id",
        "role",
        "category",
        "complexity",
        "old_model",
        "new_model",
        "changed_by",
        "via",
    )
    list_filter = ("action", "scope", "via", "role")
    search_fields = ("run_id", "category", "old_model", "new_model", "changed_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ProviderCooldownForm(forms.ModelForm):
    class Meta:
        model = ProviderCooldown
        fields = ("provider", "until", "reason")

    def clean_provider(self):
        provider = self.cleaned_data["provider"]
        try:
            known = provider in get_config().providers
        except ConfigError as exc:
            raise ValidationError(f"config/models.yaml has problems: {exc}") from None
        if not known:
            raise ValidationError(f"Unknown provider {provider!r}: it is not in config/models.yaml.")
        return provider


@admin.register(ProviderCooldown)
class ProviderCooldownAdmin(admin.ModelAdmin):
    """Cooldowns set, changed and ended here go through `set_cooldown` and `end_cooldown`, which also
    drop this process's cached provider states, so routing sees the change at once."""

    form = ProviderCooldownForm
    list_display = ("provider", "until", "failures", "reason")
    readonly_fields = ("failures", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # A cooldown belongs to its provider: to move it, end this one and add another.
        return (*self.readonly_fields, "provider") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        saved = set_cooldown(provider=obj.provider, until=obj.until, reason=obj.reason)
        obj.pk, obj.failures, obj.updated_at = saved.pk, saved.failures, saved.updated_at

    def delete_model(self, request, obj):
        end_cooldown(provider=obj.provider)

    def delete_queryset(self, request, queryset):
        for provider in queryset.values_list("provider", flat=True):
            end_cooldown(provider=provider)
