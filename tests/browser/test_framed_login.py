"""Logging in inside a frame like the editors' Simple Browser, with third-party cookies blocked.

Only `SameSite=None; Secure; Partitioned` cookies survive there; the login, then a note and a
mapping change, must work from inside the frame, and name the person who made them.
"""

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from notes.models import HumanNote
from routing.models import ModelOverride
from tests.browser.test_run_progress_live import SIMPLE_BROWSER_SANDBOX
from tests.conftest import plan
from tests.routing.conftest import ROUTING

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def test_a_person_logs_in_inside_the_frame_then_adds_a_note_and_changes_a_mapping(
    page, live_server, other_origin, remote, models_config, fast_polls, tmp_path, settings
):
    models_config(ROUTING)
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "human_notes.md")
    remote.post("/runs/start", plan())
    settings.AUTOPACK_REQUIRE_LOGIN = True
    User.objects.create_user("dana", password=PASSWORD, is_staff=True)
    console_errors = []
    page.on("console", lambda m: m.type == "error" and console_errors.append((m.text, m.location["url"])))
    other_origin.pages["/editor"] = (
        f'<iframe id="pane" sandbox="{SIMPLE_BROWSER_SANDBOX}" width="1200" height="1400" '
        f'src="{live_server.url}/dashboard/?run=run-1"></iframe>'
    )
    page.goto(f"{other_origin.url}/editor")
    framed = page.frame_locator("#pane")

    framed.get_by_label("User name").fill("dana")
    framed.get_by_label("Password").fill(PASSWORD)
    framed.get_by_role("button", name="Log in").click()
    expect(framed.locator("#run-summary")).to_be_visible()
    expect(framed.locator(".logout")).to_contain_text("dana")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sessionid"]["sameSite"] == "None" and cookies["sessionid"]["secure"]

    framed.locator("#note-text").fill("Prefer the existing helpers module.")
    framed.get_by_role("button", name="Add note").click()
    expect(framed.locator("#notes-list")).to_contain_text("Prefer the existing helpers module.")
    note = HumanNote.objects.get()
    assert (note.text, note.author) == ("Prefer the existing helpers module.", "dana")

    cell = framed.locator("#cell-builder-docs-medium")
    cell.get_by_role("button", name="Change").click()
    cell.locator("select").wait_for()
    # htmx wires the new form up as the swap settles; a person is never faster than that, a script is.
    cell.page.wait_for_timeout(200)
    cell.locator("select").select_option("o4-mini")
    expect(framed.locator("#cell-builder-docs-medium .badge.source")).to_have_text("global override")
    override = ModelOverride.objects.get()
    assert (override.model, override.changed_by) == ("o4-mini", "dana")
    assert page.js_errors == []
    # Chromium notes that a cross-site frame may not autofocus (the mapping cell asks to): no error of ours.
    ours = [e for e in console_errors if e[1].startswith(live_server.url) and "Blocked autofocusing" not in e[0]]
    assert ours == []
