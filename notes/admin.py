from django.contrib import admin

from notes.models import HumanNote


@admin.register(HumanNote)
class HumanNoteAdmin(admin.ModelAdmin):
    list_display = ("created_at", "run", "text", "author", "delivered_at", "delivered_to", "file_error")
    list_filter = ("delivered_at",)
    search_fields = ("text", "run__run_id", "author")
    readonly_fields = ("created_at", "delivered_at", "delivered_to", "file_error")
    raw_id_fields = ("run",)

    def has_add_permission(self, request):
        # Notes come from the dashboard and the API, which also write the notes file.
        return False
