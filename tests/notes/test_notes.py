import json
import re
import threading

import pytest
from django.core.management import call_command

from notes.models import HumanNote
from notes.services import append_to_file
from tests.conftest import plan
from tests.usage.conftest import event

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "Origin": "http://testserver"}


@pytest.fixture
def notes_path(tmp_path, settings):
    path = tmp_path / "nested" / ".autopack" / "human_notes.md"
    settings.AUTOPACK_NOTES_FILE = str(path)
    return path


def test_a_note_over_json_is_stored_and_appended_in_the_originals_format(api, notes_path):
    api.start(plan())
    response = api.post("/dashboard/human-notes", {"note": "Use the existing session store.", "run_id": "run-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Note added successfully"
    # Outside the project, only the file's name: the answer never shows the server's full path.
    assert body["notes_file"] == "human_notes.md" and body["file_written"] is True and body["file_error"] is None
    note = HumanNote.objects.get(pk=body["id"])
    assert (note.text, note.run.run_id, note.delivered_at) == ("Use the existing session store.", "run-1", None)
    assert (
        notes_path.read_text() == f"\n## {body['timestamp']} (Run: run-1)\n\nUse the existing session store.\n\n---\n"
    )


def test_a_note_without_a_run_has_no_run_in_its_heading(api, notes_path):
    body = api.post("/dashboard/human-notes", {"note": "Pause before deploying."}).json()
    assert notes_path.read_text() == f"\n## {body['timestamp']}\n\nPause before deploying.\n\n---\n"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"note": ""}, 400, "note"),
        ({"note": "   \n\t "}, 400, "note"),
        ({"note": "x" * 20_001}, 400, "note"),
        ({"note": 42}, 400, "note"),
        ({}, 400, "note"),
        ({"note": "hi", "run_id": 7}, 400, "run_id"),
        ({"note": "hi", "run_id": "ghost"}, 404, None),
        ([], 400, "body"),
    ],
)
def test_bad_notes_are_refused_and_nothing_is_written(api, notes_path, body, status, field):
    response = api.post("/dashboard/human-notes", body)
    assert response.status_code == status
    if field:
        assert field in response.json()["details"]
    assert not HumanNote.objects.exists() and not notes_path.exists()


def test_a_note_of_20000_characters_is_accepted(api, notes_path):
    assert api.post("/dashboard/human-notes", {"note": "y" * 20_000}).status_code == 200


def test_an_unwritable_file_loses_nothing_and_export_rewrites_it(api, tmp_path, settings):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.AUTOPACK_NOTES_FILE = str(blocker / "human_notes.md")
    body = api.post("/dashboard/human-notes", {"note": "Kept in the database."}).json()
    assert body["file_written"] is False and body["file_error"].startswith("human_notes.md: ")
    assert HumanNote.objects.get().file_error
    api.post("/dashboard/human-notes", {"note": "Second one."})
    fixed = tmp_path / "fixed" / "human_notes.md"
    settings.AUTOPACK_NOTES_FILE = str(fixed)
    call_command("export_notes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    text = fixed.read_text()
    assert text.index("Kept in the database.") < text.index("Second one.")
    assert text.count("\n---\n") == 2 and not HumanNote.objects.exclude(file_error="").exists()


def test_concurrent_appends_never_interleave(notes_path):
    blocks = [f"\n## writer {w} note {n}\n\n" + (f"{w}-{n} " * 2000) + "\n\n---\n" for w in range(8) for n in range(25)]

    def write(start):
        for block in blocks[start::8]:
            append_to_file(block)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = notes_path.read_text()
    assert sorted(re.split(r"(?=\n## writer)", written)[1:]) == sorted(blocks)


def test_the_dashboard_form_saves_a_note_and_returns_the_list(client, api, notes_path):
    api.start(plan())
    response = client.post("/dashboard/forms/note", {"note": "From the form", "run_id": "run-1"}, headers=HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="notes-list"' in page and "From the form" in page and "waiting for the next call" in page
    assert "Note saved." in page


def test_a_forged_cross_site_note_is_refused(client, notes_path):
    assert client.post("/dashboard/human-notes", {"note": "forged"}).status_code == 415
    assert client.post("/dashboard/forms/note", {"note": "forged"})["X-Refused"] == "true"
    forged = client.post(
        "/dashboard/forms/note", {"note": "forged"}, headers={"HX-Request": "true", "Origin": "http://evil.example"}
    )
    assert forged["X-Refused"] == "true" and forged["HX-Reswap"] == "none"
    assert not HumanNote.objects.exists()


def test_a_refused_note_says_why_beside_the_form_and_keeps_the_list(client, api, notes_path):
    response = client.post(
        "/dashboard/forms/note", {"note": "   ", "run_id": "run-1"}, headers={**HTMX, "HX-Target": "notes-list"}
    )
    assert response.status_code == 200 and response["HX-Reswap"] == "none" and response["X-Refused"] == "true"
    page = response.content.decode()
    assert page.startswith('<span id="notes-list-error" hx-swap-oob="innerHTML">Not done:')
    assert not HumanNote.objects.exists()


def test_notes_render_as_text_not_html(client, api, notes_path):
    api.post("/dashboard/human-notes", {"note": "<img src=x onerror=alert(1)>"})
    page = client.get("/dashboard/notes/list").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_context_txt_is_plain_text_with_the_runs_state(client, api, notes_path):
    api.start(plan(token_cap=10_000))
    api.move("run-1", "P1", "COMPLETE", tokens_used=2_500)
    api.move("run-1", "P2", "FAILED")
    api.post("/runs/run-1/phases/P2/record_issue", {"issue_key": "tests-red", "severity": "major"})
    api.post("/dashboard/human-notes", {"note": "Look at the failing test first.", "run_id": "run-1"})
    response = client.get("/dashboard/runs/run-1/context.txt")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    for line in (
        "Autopack run run-1",
        "State: PHASE_EXECUTION",
        "Progress: 25.0% (1 of 4 phases done)",
        "Current tier: Tier T2 (#1)",
        "Current phase: Phase 3 (#2, QUEUED)",
        "Tokens: 2,500 of 10,000 (25.0%)",
        "Issues: 0 minor, 1 major",
        "Last failed phase: Phase 2 (P2): tests-red (major)",
        "Look at the failing test first.",
    ):
        assert line in text
    assert client.get("/dashboard/runs/ghost/context.txt", headers={"Accept": "text/html"}).status_code == 404


def test_the_dashboard_panel_shows_the_form_notes_and_the_context(client, api, notes_path):
    api.start(plan())
    api.post("/dashboard/human-notes", {"note": "Noted.", "run_id": "run-1"})
    page = client.get("/dashboard/", {"run": "run-1"}).content.decode()
    assert 'name="note"' in page and "disabled data-needs-text" in page
    assert "Noted." in page and 'data-copy-context="/dashboard/runs/run-1/context.txt"' in page
    assert "Autopack run run-1" in page


def test_json_notes_follow_the_api_key_rules(api, notes_path, settings):
    settings.AUTOPACK_API_KEY = "k"
    assert api.post("/dashboard/human-notes", {"note": "x"}).status_code == 401
    assert api.post("/dashboard/human-notes", json.dumps({"note": "x"}), **{"X-API-Key": "k"}).status_code == 200


def test_the_default_notes_file_is_named_relative_to_the_project(api, settings):
    settings.AUTOPACK_NOTES_FILE = str(settings.BASE_DIR / ".autopack" / "test_notes_name.md")
    try:
        body = api.post("/dashboard/human-notes", {"note": "Keep it short."}).json()
        assert body["notes_file"] == ".autopack/test_notes_name.md"
    finally:
        (settings.BASE_DIR / ".autopack" / "test_notes_name.md").unlink(missing_ok=True)


def test_context_txt_lists_the_runs_own_models_not_the_global_top(client, api, notes_path, models_config):
    api.start(plan())
    api.post("/api/usage", event(model="gpt-4o-mini", run_id="run-1", prompt_tokens=5000))
    api.post("/api/usage", event(model="gpt-4o", run_id="run-1", prompt_tokens=1000))
    api.post("/api/usage", event(model="gpt-4.1", prompt_tokens=900_000))
    text = client.get("/dashboard/runs/run-1/context.txt").content.decode()
    assert "Models in this run: gpt-4o-mini (5,050 tokens), gpt-4o (1,050 tokens)" in text
    assert "gpt-4.1" not in text


def test_the_notes_poll_answers_204_until_a_note_is_added_edited_delivered_or_withdrawn(api, client, notes_path):
    from notes.services import delete_note, edit_note, mark_delivered

    api.start(plan())

    def version():
        page = client.get("/dashboard/notes/list", {"run": "run-1"}).content.decode()
        return re.search(r"v=([^\"&]+)\"", page).group(1)

    def poll(v):
        return client.get("/dashboard/notes/list", {"run": "run-1", "v": v}).status_code

    empty = version()
    assert poll(empty) == 204
    first = api.post("/dashboard/human-notes", {"note": "Keep the schema", "run_id": "run-1"}).json()["id"]
    assert poll(empty) == 200
    added = version()
    # A note for every run is another list: this one does not move.
    api.post("/dashboard/human-notes", {"note": "For every run"})
    assert poll(added) == 204
    edit_note(note_id=first, text="Keep the schema as it is", run_id="run-1")
    assert poll(added) == 200
    edited = version()
    mark_delivered([HumanNote.objects.get(pk=first)], call="builder P1")
    assert poll(edited) == 200
    delivered = version()
    second = api.post("/dashboard/human-notes", {"note": "Ask first", "run_id": "run-1"}).json()["id"]
    with_second = version()
    delete_note(note_id=second)
    assert poll(with_second) == 200
    # Back to the list a poller saw before the note was added: nothing to send it.
    assert version() == delivered and poll(delivered) == 204
