import re

import pytest

from notes.models import HumanNote
from notes.services import add_note
from tests.conftest import plan
from tests.routing.conftest import provider, service  # noqa: F401 - fixtures
from tests.routing.test_llm_service import MESSAGES

pytestmark = pytest.mark.django_db


@pytest.fixture
def notes_file(tmp_path, settings):
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "human_notes.md")


def system_prompt(request) -> str:
    return request["body"]["messages"][0]["content"]


def test_a_note_reaches_the_next_builder_call_and_only_that_one(service, provider, api, notes_file):  # noqa: F811
    api.start(plan())
    added = add_note(text="Keep the public API unchanged.", run_id="run-1")
    result = service.execute_builder_phase({"complexity": "medium", "name": "x"}, "", run_id="run-1", phase_id="P1")
    first = system_prompt(provider.requests[0])
    assert first.startswith("You are the Builder of Autopack")
    assert "## Notes from the person watching this run" in first and "Keep the public API unchanged." in first
    note = HumanNote.objects.get(pk=added.note.pk)
    assert note.delivered_at is not None and result["request_id"] in note.delivered_to
    service.execute_auditor_review("diff", {"complexity": "medium"}, run_id="run-1", phase_id="P1")
    assert "Keep the public API unchanged." not in system_prompt(provider.requests[1])


def test_global_notes_go_to_any_run_and_run_notes_only_to_theirs(service, provider, api, notes_file):  # noqa: F811
    api.start(plan(run_id="a"))
    api.start(plan(run_id="b"))
    add_note(text="For run b only.", run_id="b")
    add_note(text="For everyone.")
    service.complete("builder", None, "medium", MESSAGES, run_id="a")
    prompt = provider.requests[0]["body"]["messages"][0]["content"]
    assert "For everyone." in prompt and "For run b only." not in prompt
    assert HumanNote.objects.get(text="For run b only.").delivered_at is None


def test_a_call_that_never_reached_a_model_does_not_mark_notes_delivered(service, provider, api, notes_file):  # noqa: F811
    api.start(plan())
    add_note(text="Wait for me.", run_id="run-1")
    provider.script("gpt-4o", (400, {"error": {"message": "bad request"}}, {}, 0))
    result = service.execute_builder_phase({"complexity": "medium"}, "", run_id="run-1", phase_id="P1")
    assert result["success"] is False
    assert HumanNote.objects.get().delivered_at is None


def test_the_panel_shows_each_notes_delivery(service, provider, api, client, notes_file):  # noqa: F811
    api.start(plan())
    add_note(text="Seen by the agent.", run_id="run-1")
    service.complete("builder", None, "medium", MESSAGES, run_id="run-1")
    add_note(text="Not yet seen.", run_id="run-1")
    page = client.get("/dashboard/notes/list", {"run": "run-1"}).content.decode()
    assert re.search(r"Seen by the agent\.</span>\s*<span[^>]*>delivered", page)
    assert "waiting for the next call" in page
