"""Intervention helpers: notes to the agents and the run's context to copy into a chat."""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from autopack_site.api import api_view, dashboard_form
from autopack_site.contract import validate_body
from autopack_site.queries import query_id
from notes.context import run_context_text
from notes.models import HumanNote
from notes.requests import HumanNoteIn
from notes.services import add_note, notes_file_label
from runs.models import Run

RECENT_NOTES = 10


@dashboard_form(methods=("POST",))
def note_form(request):
    """A note left on the dashboard: the same service as the JSON view, answered as the notes list."""
    body = validate_body(HumanNoteIn, request.form, "Invalid note")
    added = add_note(text=body.note, run_id=body.run_id or None, author=_author(request))
    return render(request, "notes/panel.html#notes", notes_context(body.run_id or None) | {"just_added": added})


@api_view(methods=("POST",))
def human_notes(request):
    body = validate_body(HumanNoteIn, request.json, "Invalid note")
    added = add_note(text=body.note, run_id=body.run_id or None, author=_author(request))
    return JsonResponse(
        {
            "message": "Note added successfully",
            "timestamp": added.note.created_at.isoformat(),
            "notes_file": notes_file_label(),
            "id": added.note.pk,
            "file_written": added.file_written,
            "file_error": added.file_error or None,
        }
    )


def _author(request) -> str:
    return request.user.get_username() if request.user.is_authenticated else ""


def helpers_context(run: Run | None) -> dict:
    """What the intervention panel shows for the selected run (or for every run when none)."""
    return {
        **notes_context(run.run_id if run else None),
        "notes_file": notes_file_label(),
        "context_text": run_context_text(run) if run else "",
    }


def notes_context(run_id: str | None) -> dict:
    notes = HumanNote.objects.select_related("run")
    notes = notes.filter(run__run_id=run_id) if run_id else notes.filter(run__isnull=True)
    return {"notes": list(notes[:RECENT_NOTES]), "notes_run_id": run_id}


@require_GET
def notes_list(request):
    return render(request, "notes/panel.html#notes", notes_context(query_id(request, "run")))


@require_GET
def context_txt(request, run_id):
    run = get_object_or_404(Run, run_id=run_id)
    return HttpResponse(run_context_text(run), content_type="text/plain; charset=utf-8")
