"""The whole dashboard inside a frame like VS Code's and Cursor's Simple Browser.

The page embedding it is served from another origin (localhost vs the live server's 127.0.0.1), with
the Simple Browser's exact sandbox and no `allow=` attribute, in Chromium with its default cookie
settings: no cookie of ours survives there, clipboard access is refused, and modals are off.
"""

import pytest
from playwright.sync_api import expect

from alerts.models import Alert
from notes.models import HumanNote
from routing.models import ModelOverride
from routing.services import put_in_cooldown
from runs.models import Run
from tests.browser.test_run_progress_live import SIMPLE_BROWSER_SANDBOX
from tests.conftest import plan
from tests.routing.conftest import ROUTING
from tests.usage.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def framed(page, live_server, other_origin, remote, models_config, fast_polls, tmp_path, settings):
    models_config(ROUTING)
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "human_notes.md")
    remote.post("/runs/start", plan())
    other_origin.pages["/editor"] = (
        f'<iframe id="pane" sandbox="{SIMPLE_BROWSER_SANDBOX}" width="1200" height="1400" '
        f'src="{live_server.url}/dashboard/?run=run-1"></iframe>'
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=other_origin.url)
    page.goto(f"{other_origin.url}/editor")
    frame = page.frame_locator("#pane")
    expect(frame.locator("#run-summary")).to_be_visible()
    return frame


def test_every_panel_renders_and_refreshes_in_the_frame(framed, page, remote):
    for panel in ("#run-summary", "#usage-panel", "#mapping-panel", "#helpers-panel"):
        expect(framed.locator(panel)).to_be_visible()
    remote.post("/runs/run-1/phases/P1/update_status", {"state": "COMPLETE"})
    remote.post("/api/usage", event(prompt_tokens=4000, completion_tokens=0))
    remote.post("/dashboard/human-notes", {"note": "Sent from the API.", "run_id": "run-1"})
    expect(framed.locator('#run-summary [aria-label="Run progress"]')).to_have_attribute(
        "aria-valuenow", "25.0", timeout=10_000
    )
    expect(framed.locator("#usage-panel")).to_contain_text("4K tokens", timeout=10_000)
    expect(framed.locator("#provider-strip")).to_contain_text(
        "openai: no weekly cap · exhausted its daily cap", timeout=12_000
    )
    expect(framed.locator("#notes-list")).to_contain_text("Sent from the API.", timeout=10_000)
    assert page.js_errors == []


def test_a_note_submitted_in_the_frame_is_saved_without_cookies(framed, page):
    button = framed.get_by_role("button", name="Add note")
    expect(button).to_be_disabled()
    framed.locator("#note-text").fill("Prefer the existing helpers module.")
    expect(button).to_be_enabled()
    button.click()
    expect(framed.locator("#notes-list")).to_contain_text("Prefer the existing helpers module.")
    expect(framed.locator("#note-text")).to_have_value("")
    note = HumanNote.objects.get()
    assert (note.text, note.run.run_id) == ("Prefer the existing helpers module.", "run-1")
    assert page.context.cookies() == []


def test_typing_survives_polls(framed, page):
    framed.locator("#note-text").fill("Half a thought")
    page.wait_for_timeout(2_500)
    expect(framed.locator("#note-text")).to_have_value("Half a thought")
    expect(framed.locator("#note-text")).to_be_focused()


def test_a_mapping_change_in_the_frame_is_saved(framed):
    cell = framed.locator("#cell-builder-docs-medium")
    cell.get_by_role("button", name="Change").click()
    cell.locator("select").wait_for()
    # htmx wires the new form up as the swap settles; a person is never faster than that, a script is.
    cell.page.wait_for_timeout(200)
    cell.locator("select").select_option("o4-mini")
    expect(framed.locator("#cell-builder-docs-medium .badge.source")).to_have_text("global override")
    assert ModelOverride.objects.get().model == "o4-mini"


def test_pause_resume_and_cancel_in_the_frame_through_the_page_s_dialog(framed, page):
    """confirm() is blocked in the frame; the in-page dialog is not, and needs no cookie."""
    framed.get_by_role("button", name="Pause…").click()
    dialog = framed.locator("#control-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("textarea").fill("Checking the plan")
    dialog.get_by_role("button", name="Pause", exact=True).click()
    expect(framed.locator("#run-summary .badge.paused")).to_have_text("paused")
    assert Run.objects.get().pause_reason == "Checking the plan"

    framed.get_by_role("button", name="Resume…").click()
    dialog.get_by_role("button", name="Resume", exact=True).click()
    expect(framed.get_by_role("button", name="Pause…")).to_be_visible()
    assert not Run.objects.get().is_paused

    framed.get_by_role("button", name="Cancel run…").click()
    dialog.locator("textarea").fill("Wrong branch")
    dialog.get_by_role("button", name="Cancel run", exact=True).click()
    expect(framed.locator("#run-summary")).to_contain_text("cancelled: Wrong branch")
    assert Run.objects.get().state == "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    assert page.context.cookies() == []
    assert page.js_errors == []


def test_copy_context_in_the_frame_yields_the_text(framed, page):
    framed.get_by_role("button", name="Copy context").click()
    expect(framed.locator("[data-copy-status]")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Autopack run run-1\nState: RUN_CREATED")
    expect(framed.locator("#context-text")).to_have_value(copied)


def test_a_cross_site_page_cannot_post_a_note(page, live_server, other_origin, tmp_path, settings):
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "human_notes.md")
    other_origin.pages["/attack"] = (
        f'<form id="f" method="post" action="{live_server.url}/dashboard/human-notes">'
        '<input name="note" value="forged"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    page.goto(f"{other_origin.url}/attack")
    page.wait_for_load_state("networkidle")
    assert "Cross-site request refused" in page.content()
    assert not HumanNote.objects.exists()


def test_an_alert_raised_while_the_page_is_open_is_acknowledged_in_the_frame(framed, page):
    expect(framed.locator("#alert-badge")).to_have_text("0")
    put_in_cooldown(provider="openai", reason="429 Too Many Requests")
    alert = framed.locator("#alerts-list li")
    expect(alert).to_contain_text("openai is in cooldown", timeout=10_000)
    expect(framed.locator("#alert-badge")).to_have_text("1")
    framed.locator("#alert-by").fill("Dana")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(framed.locator("#alerts-list")).to_contain_text("No open alerts")
    expect(framed.locator("#alert-badge")).to_have_text("0")
    acknowledged = Alert.objects.get()
    assert acknowledged.acknowledged_by == "Dana" and acknowledged.acknowledged_at is not None
    assert page.context.cookies() == []
    assert page.js_errors == []
