"""Adding notes, writing them to the notes file, and handing them to the agents."""

import fcntl
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from autopack_site import clock
from autopack_site.errors import Conflict, InvalidInput, NotFound
from autopack_site.prepared import PreparedQuery
from notes.models import HumanNote
from runs.models import Run

MAX_NOTE_CHARS = 20_000

logger = logging.getLogger(__name__)


@dataclass
class AddedNote:
    note: HumanNote
    file_written: bool
    file_error: str


def notes_file() -> Path:
    return Path(settings.AUTOPACK_NOTES_FILE)


def notes_file_label() -> str:
    """The notes file as clients and pages name it: relative to the project, never the server's full path."""
    path = notes_file()
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return path.name


def note_block(note: HumanNote) -> str:
    """The original's format: a blank line, `## <UTC time>` and the run, a blank line, the note, `---`."""
    heading = f"\n## {note.created_at.isoformat()}"
    if note.run_id:
        heading += f" (Run: {note.run.run_id})"
    return f"{heading}\n\n{note.text}\n\n---\n"


def add_note(*, text: str, run_id: str | None = None, author: str = "") -> AddedNote:
    """Store a note, then append it to the notes file. A file that cannot be written loses nothing."""
    _check_text(text)
    run = _find_run(run_id)
    with transaction.atomic():
        now = clock.now()
        note = HumanNote.objects.create(run=run, text=text, author=author, created_at=now, changed_at=now)
    try:
        append_to_file(note_block(note))
    except OSError as exc:
        note.file_error = f"{notes_file_label()}: {exc.strerror or exc}"[:500]
        note.save(update_fields=["file_error"])
        return AddedNote(note, False, note.file_error)
    return AddedNote(note, True, "")


@transaction.atomic
def edit_note(*, note_id: int, text: str, run_id: str | None = None) -> HumanNote:
    """Change a note no agent has read yet; the notes file is rewritten from the database once committed."""
    _check_text(text)
    run = _find_run(run_id)
    note = _lock_undelivered(note_id)
    note.text, note.run, note.changed_at = text, run, clock.now()
    note.save(update_fields=["text", "run", "changed_at"])
    rewrite_file_on_commit(note_id=note.pk)
    return note


@transaction.atomic
def delete_note(*, note_id: int) -> None:
    """Withdraw a note no agent has read yet; the notes file is rewritten from the database once committed."""
    _lock_undelivered(note_id).delete()
    rewrite_file_on_commit()


def rewrite_file_on_commit(*, note_id: int | None = None) -> None:
    """Rewrite the notes file from the database when the current transaction commits.

    After the commit, so a rolled-back change never reaches the file. A file that cannot be written
    is noted on the changed note (`note_id`), as `add_note` does, or logged.
    """

    def rewrite():
        try:
            export_notes()
        except OSError as exc:
            error = f"{notes_file_label()}: {exc.strerror or exc}"[:500]
            if note_id is None:
                logger.warning("Could not rewrite the notes file: %s", error)
            else:
                HumanNote.objects.filter(pk=note_id).update(file_error=error)

    transaction.on_commit(rewrite)


def _check_text(text) -> None:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("Invalid note", {"note": "may not be empty"})
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput("Invalid note", {"note": f"may be at most {MAX_NOTE_CHARS} characters"})


def _find_run(run_id: str | None) -> Run | None:
    if not run_id:
        return None
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    return run


def _lock_undelivered(note_id: int) -> HumanNote:
    # Locked: an agent's call may be delivering this very note; once delivered it is history.
    note = HumanNote.objects.select_for_update().filter(pk=note_id).first()
    if note is None:
        raise NotFound(f"Note {note_id} not found")
    if note.is_delivered:
        raise Conflict(f"Note {note_id} was already delivered to {note.delivered_to}; it can no longer change")
    return note


def append_to_file(block: str) -> None:
    """One write under an exclusive lock: concurrent notes, from any process, never interleave."""
    path = notes_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_notes() -> int:
    """Rewrite the notes file from the database, oldest first; returns how many notes it holds."""
    notes = list(HumanNote.objects.select_related("run").order_by("created_at", "id"))
    path = notes_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside it, then swap in, under the same lock appends take: no reader sees half a file.
    with open(path, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as out:
                out.write("".join(note_block(n) for n in notes))
            os.replace(out.name, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    HumanNote.objects.exclude(file_error="").update(file_error="")
    return len(notes)


def _pending(run_id: str | None = None):
    notes = HumanNote.objects.filter(delivered_at__isnull=True, run__isnull=True)
    if run_id:
        notes = notes | HumanNote.objects.filter(delivered_at__isnull=True, run__run_id=run_id)
    return notes


# Asked before every LLM call, and nearly always empty: a prepared look first, the notes only if any.
ANY_GLOBAL_PENDING = PreparedQuery(lambda: _pending().values_list("id")[:1])
ANY_PENDING = PreparedQuery(lambda run_id: _pending(run_id).values_list("id")[:1], arity=1)


def pending_notes(run_id: str | None) -> list[HumanNote]:
    """Notes no agent has read yet: the run's and the global ones, oldest first."""
    if (ANY_PENDING.first_row(run_id) if run_id else ANY_GLOBAL_PENDING.first_row()) is None:
        return []
    return list(_pending(run_id).select_related("run").order_by("created_at", "id"))


def notes_prompt(notes: list[HumanNote]) -> str:
    lines = ["## Notes from the person watching this run", "Take these into account; they come from a human."]
    for note in notes:
        lines.append(f"- ({note.created_at:%Y-%m-%d %H:%M} UTC) {note.text}")
    return "\n".join(lines)


def mark_delivered(notes: list[HumanNote], *, call: str) -> None:
    now = clock.now()
    HumanNote.objects.filter(pk__in=[n.pk for n in notes], delivered_at__isnull=True).update(
        delivered_at=now, delivered_to=call[:300], changed_at=now
    )
