from django.contrib import admin

from notes.models import HumanNote
from notes.services import delete_note, edit_note


@admin.register(HumanNote)
class HumanNoteAdmin(admin.ModelAdmin):
    """A note no agent has read yet may be corrected or withdrawn, through `edit_note` and `delete_note`,
    which rewrite the notes file from the database (as `manage.py export_notes` does) so the file and
    what the agents receive agree.

    A delivered note is read-only and cannot be deleted on its own: an agent has already acted on it,
    so it is a record of what was sent. (Deleting its run still takes it along, and rewrites the file.)
    """

    list_display = ("created_at", "run", "text", "author", "delivered_at", "delivered_to", "file_error")
    list_filter = ("delivered_at",)
    search_fields = ("text", "run__run_id", "author")
    readonly_fields = ("author", "created_at", "changed_at", "delivered_at", "delivered_to", "file_error")
    raw_id_fields = ("run",)

    def has_add_permission(self, request):
        # Notes come from the dashboard and the API, which also write the notes file.
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.is_delivered)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Shown as protected, so the admin refuses the whole deletion and says which notes stop it.
        protected = [*protected, *(f"{note} (delivered to {note.delivered_to})" for note in objs if note.is_delivered)]
        return deleted, counts, perms_needed, protected

    def save_model(self, request, obj, form, change):
        edit_note(note_id=obj.pk, text=obj.text, run_id=obj.run.run_id if obj.run_id else None)

    def delete_model(self, request, obj):
        delete_note(note_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for note_id in queryset.values_list("pk", flat=True):
            delete_note(note_id=note_id)
