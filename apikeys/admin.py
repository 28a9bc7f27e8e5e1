from django.contrib import admin, messages

from apikeys.models import ApiKey
from apikeys.services import create_api_key, revoke_api_key


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are listed and revoked here, through `revoke_api_key`; a new key comes from
    `create_api_key` (here or `manage.py create_api_key NAME`), and its secret is shown once.

    Nothing else about a key can change, and a key is never deleted: what it sent keeps its name.
    """

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A new key is given only its name; the rest is the service's.
        return ("prefix", "created_at", "last_used_at", "revoked_at") if obj is None else self.fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field of a saved key is read-only
        created = create_api_key(name=obj.name)
        obj.pk = created.key.pk
        messages.warning(request, f"The secret of {created.key.name}, shown only now: {created.secret}")

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key_id in queryset.values_list("pk", flat=True):
            revoke_api_key(key_id=key_id)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
