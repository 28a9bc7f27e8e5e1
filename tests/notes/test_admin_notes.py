import pytest

from autopack_site import clock
from autopack_site.errors import Conflict
from notes.models import HumanNote
from notes.services import add_note, edit_note, mark_delivered
from runs.models import Run
from tests.conftest import plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def notes_path(tmp_path, settings):
    path = tmp_path / ".autopack" / "human_notes.md"
    settings.AUTOPACK_NOTES_FILE = str(path)
    return path


def blocks(*notes: HumanNote) -> str:
    """The notes file as `manage.py export_notes` writes it for these notes."""
    text = ""
    for note in notes:
        heading = f"\n## {note.created_at.isoformat()}" + (f" (Run: {note.run.run_id})" if note.run_id else "")
        text += f"{heading}\n\n{note.text}\n\n---\n"
    return text


def test_a_note_edited_in_the_admin_is_rewritten_in_the_file(
    admin_client, api, notes_path, django_capture_on_commit_callbacks
):
    api.start(plan())
    first = add_note(text="Use the session store.").note
    second = add_note(text="Keep the API as is.", run_id="run-1").note

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/notes/humannote/{first.pk}/change/", {"text": "Use Redis for sessions.", "run": ""}
        )

    assert response.status_code == 302
    first.refresh_from_db()
    assert first.text == "Use Redis for sessions."
    assert notes_path.read_text() == blocks(first, second)


def test_a_note_moved_to_a_run_in_the_admin_names_the_run_in_the_file(
    admin_client, api, notes_path, django_capture_on_commit_callbacks
):
    api.start(plan())
    run = Run.objects.get()
    note = add_note(text="Keep the API as is.").note

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/notes/humannote/{note.pk}/change/", {"text": note.text, "run": run.pk})

    note.refresh_from_db()
    assert note.run.run_id == "run-1" and "(Run: run-1)" in notes_path.read_text()


def test_a_note_deleted_in_the_admin_leaves_the_file(admin_client, notes_path, django_capture_on_commit_callbacks):
    kept = add_note(text="Use the session store.").note
    withdrawn = add_note(text="Drop the cache.").note

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/notes/humannote/{withdrawn.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(HumanNote.objects.all()) == [kept]
    assert notes_path.read_text() == blocks(kept)


def test_a_delivered_note_is_read_only_in_the_admin(admin_client, notes_path):
    note = add_note(text="Use the session store.").note
    mark_delivered([note], call="builder run-1/P1")
    before = notes_path.read_text()

    page = admin_client.get(f"/admin/notes/humannote/{note.pk}/change/").content.decode()
    response = admin_client.post(f"/admin/notes/humannote/{note.pk}/change/", {"text": "Changed.", "run": ""})

    assert 'name="text"' not in page
    assert response.status_code == 403
    assert HumanNote.objects.get().text == "Use the session store." and notes_path.read_text() == before


def test_a_delivered_note_cannot_be_deleted_in_the_admin(admin_client, notes_path):
    delivered = add_note(text="Use the session store.").note
    pending = add_note(text="Drop the cache.").note
    mark_delivered([delivered], call="builder run-1/P1")

    single = admin_client.post(f"/admin/notes/humannote/{delivered.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        "/admin/notes/humannote/",
        {"action": "delete_selected", "_selected_action": [delivered.pk, pending.pk], "post": "yes"},
    )

    assert "Cannot delete" in single.content.decode() and "Cannot delete" in bulk.content.decode()
    assert HumanNote.objects.count() == 2


def test_an_edit_that_lost_the_race_to_delivery_is_refused(notes_path):
    note = add_note(text="Use the session store.").note
    HumanNote.objects.filter(pk=note.pk).update(delivered_at=clock.now(), delivered_to="builder run-1/P1")

    with pytest.raises(Conflict):
        edit_note(note_id=note.pk, text="Changed.")
    assert HumanNote.objects.get().text == "Use the session store."
