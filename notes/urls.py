from django.urls import path

import autopack_site.converters  # noqa: F401 - registers <id:...>
from notes import views

api_urlpatterns = [
    path("dashboard/human-notes", views.human_notes, name="human-notes"),
]

dashboard_urlpatterns = [
    path("dashboard/notes/list", views.notes_list, name="notes-list"),
    path("dashboard/forms/note", views.note_form, name="note-form"),
    path("dashboard/runs/<id:run_id>/context.txt", views.context_txt, name="run-context"),
]
