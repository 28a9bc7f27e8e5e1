"""Intervention helpers: notes to the agents and the run's context to copy into a chat."""

from django.db.models import Count, Max
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from autopack_site.access import actor
from autopack_site.api import api_view, dashboard_form
from autopack_site.contract import validate_body
from autopack_site.prepared import PreparedQuery
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
    return actor(request, via="")


def helpers_context(run: Run | None) -> dict:
    """What the intervention panel shows for the selected run (or for every run when none)."""
    return {
        **notes_context(run.run_id if run else None),
        "notes_file": notes_file_label(),
        "context_text": run_context_text(run) if run else "",
    }


def _scope(run_id: str | None = None):
    notes = HumanNote.objects.all()
    return notes.filter(run__run_id=run_id) if run_id else notes.filter(run__isnull=True)


def notes_context(run_id: str | None, *, version: str | None = None) -> dict:
    notes = _scope(run_id).select_related("run")
    return {
        "notes": list(notes[:RECENT_NOTES]),
        "notes_run_id": run_id,
        "notes_version": version or notes_version(run_id),
    }


def _scope_figures(*run_id: str):
    """How many notes a scope holds and when one last changed, as one row (none for an empty scope)."""
    return _scope(*run_id).order_by().values("run").annotate(count=Count("id"), changed=Max("changed_at"))


RUN_NOTES_VERSION = PreparedQuery(lambda run_id: _scope_figures(run_id).values_list("count", "changed"), arity=1)
GLOBAL_NOTES_VERSION = PreparedQuery(lambda: _scope_figures().values_list("count", "changed"))


def notes_version(run_id: str | None) -> str:
    """Changes whenever the list may have: a note added, edited, delivered or withdrawn. One query."""
    seen = RUN_NOTES_VERSION.first_row(run_id) if run_id else GLOBAL_NOTES_VERSION.first_row()
    if not seen:
        return "0"
    # The time's digits as the database gives them (a version is only compared with itself), safe in a URL.
    return f"{seen[0]}." + "".join(c for c in str(seen[1]) if c.isdigit())


@require_GET
def notes_list(request):
    """The list again, or an empty 204 (one query) when nothing it shows can have changed since `v`."""
    run_id = query_id(request, "run")
    version = notes_version(run_id)
    if request.GET.get("v") == version:
        return HttpResponse(status=204)
    return render(request, "notes/panel.html#notes", notes_context(run_id, version=version))


@require_GET
def context_txt(request, run_id):
    run = get_object_or_404(Run, run_id=run_id)
    return HttpResponse(run_context_text(run), content_type="text/plain; charset=utf-8")
