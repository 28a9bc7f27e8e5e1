import pytest
from playwright.sync_api import expect

from routing.models import ModelOverride, OverrideChange
from tests.browser.test_run_progress_live import SIMPLE_BROWSER_SANDBOX
from tests.routing.conftest import ROUTING

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def routing(models_config):
    models_config(ROUTING)


def test_a_dropdown_change_saves_and_shows_its_source_at_once(page, live_server, routing):
    page.goto(f"{live_server.url}/dashboard/models/")
    cell = page.locator("#cell-builder-docs-low")
    expect(cell.locator(".badge.source")).to_have_text("yaml")
    cell.locator("select").select_option("o3")
    expect(page.locator("#cell-builder-docs-low .badge.source")).to_have_text("global override")
    assert ModelOverride.objects.get().model == "o3"
    page.locator("#cell-builder-docs-low").get_by_role("button", name="Reset to YAML").click()
    expect(page.locator("#cell-builder-docs-low .badge.source")).to_have_text("yaml")
    assert not ModelOverride.objects.exists()
    assert page.js_errors == []


def test_a_dropdown_change_inside_the_simple_browser_frame_is_saved(
    page, live_server, other_origin, routing, fast_polls
):
    other_origin.pages["/editor"] = (
        f'<iframe id="pane" sandbox="{SIMPLE_BROWSER_SANDBOX}" width="1000" height="900" '
        f'src="{live_server.url}/dashboard/models/"></iframe>'
    )
    page.goto(f"{other_origin.url}/editor")
    frame = page.frame_locator("#pane")
    frame.locator("#cell-auditor-general-high select").select_option("gpt-5")
    expect(frame.locator("#cell-auditor-general-high .badge.source")).to_have_text("global override")
    assert ModelOverride.objects.get().model == "gpt-5"
    assert OverrideChange.objects.get().via == "dashboard"


def test_polls_do_not_wipe_a_dropdown_being_changed(page, live_server, routing, fast_polls):
    page.goto(f"{live_server.url}/dashboard/models/")
    select = page.locator("#cell-builder-general-medium select")
    select.focus()
    page.evaluate("window.polls = 0; document.body.addEventListener('htmx:afterRequest', () => window.polls++)")
    # CSP forbids eval, so poll from here rather than with wait_for_function.
    for _ in range(60):
        if page.evaluate("window.polls") >= 2:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.polls") >= 2
    assert page.evaluate("document.activeElement.id") == "select-builder-general-medium"


def test_a_cross_site_page_cannot_change_an_override(page, live_server, other_origin, routing):
    other_origin.pages["/attack"] = (
        f'<form id="f" method="post" action="{live_server.url}/dashboard/models/override">'
        '<input name="role" value="builder"><input name="model" value="o3"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    page.goto(f"{other_origin.url}/attack")
    page.wait_for_load_state("networkidle")
    assert not ModelOverride.objects.exists()
