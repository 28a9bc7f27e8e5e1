from django.contrib import admin

from alerts.models import Alert
from alerts.services import acknowledge_alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are raised by the sweep and the services, and their delivery by its tasks. The one
    change a person makes, acknowledging, is the action below, through the dashboard's service."""

    list_display = ("raised_at", "kind", "subject", "threshold", "message", "delivery", "delivery_attempts")
    list_display += ("acknowledged_at", "acknowledged_by")
    list_filter = ("kind", "delivery", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("subject", "message", "run_id", "provider")
    actions = ("acknowledge",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # A deleted alert would be raised again by the next sweep: acknowledge it instead.
        return False

    @admin.action(description="Acknowledge the selected alerts", permissions=("view",))
    def acknowledge(self, request, queryset):
        for alert_id in queryset.filter(acknowledged_at__isnull=True).values_list("pk", flat=True):
            acknowledge_alert(alert_id=alert_id, by=request.user.get_username())
