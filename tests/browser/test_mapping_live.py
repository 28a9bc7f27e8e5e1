import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from routing.models import ModelOverride, OverrideChange
from tests.browser.test_run_progress_live import SIMPLE_BROWSER_SANDBOX
from tests.routing.conftest import ROUTING

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def routing(models_config):
    models_config(ROUTING)


def change(cell, model):
    cell.get_by_role("button", name="Change").click()
    cell.locator("select").wait_for()
    settled(cell.page)
    cell.locator("select").select_option(model)


def settled(page):
    """htmx wires a new form up as its swap settles; a person is never faster than that, a script is."""
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


def test_a_change_saves_and_shows_its_source_at_once(page, live_server, routing):
    page.goto(f"{live_server.url}/dashboard/models/")
    cell = page.locator("#cell-builder-docs-low")
    expect(cell.locator(".badge.source")).to_have_text("yaml")
    expect(page.locator("select")).to_have_count(0)
    change(cell, "o3")
    expect(cell.locator(".badge.source")).to_have_text("global override")
    expect(cell.locator(".cell-model")).to_have_text("o3")
    expect(cell.locator("select")).to_have_count(0)
    assert ModelOverride.objects.get().model == "o3"
    cell.get_by_role("button", name="Reset to YAML").click()
    expect(cell.locator(".badge.source")).to_have_text("yaml")
    assert not ModelOverride.objects.exists()
    assert page.js_errors == []


def test_cancel_closes_the_choices_without_a_change(page, live_server, routing):
    page.goto(f"{live_server.url}/dashboard/models/")
    cell = page.locator("#cell-auditor-docs-high")
    cell.get_by_role("button", name="Change").click()
    expect(cell.locator("select")).to_be_focused()
    cell.get_by_role("button", name="Cancel").click()
    expect(cell.locator("select")).to_have_count(0)
    expect(cell.locator(".cell-model")).to_have_text("claude-opus-4-1")
    assert not ModelOverride.objects.exists()


def test_a_refused_change_says_why_in_its_cell(page, live_server, routing, models_config):
    page.goto(f"{live_server.url}/dashboard/models/")
    cell = page.locator("#cell-builder-general-low")
    cell.get_by_role("button", name="Change").click()
    expect(cell.locator("select")).to_be_visible()
    settled(page)
    models_config({"models": "not a mapping"})
    cell.locator("select").select_option("o3")
    expect(cell.locator(".cell-error")).to_contain_text("Not done: config/models.yaml has problems")
    assert not ModelOverride.objects.exists()


def test_a_change_inside_the_simple_browser_frame_is_saved(page, live_server, other_origin, routing, fast_polls):
    other_origin.pages["/editor"] = (
        f'<iframe id="pane" sandbox="{SIMPLE_BROWSER_SANDBOX}" width="1000" height="900" '
        f'src="{live_server.url}/dashboard/models/"></iframe>'
    )
    page.goto(f"{other_origin.url}/editor")
    frame = page.frame_locator("#pane")
    change(frame.locator("#cell-auditor-general-high"), "gpt-5")
    expect(frame.locator("#cell-auditor-general-high .badge.source")).to_have_text("global override")
    assert ModelOverride.objects.get().model == "gpt-5"
    assert OverrideChange.objects.get().via == "dashboard"


def test_polls_do_not_close_choices_a_person_opened(page, live_server, routing, fast_polls):
    page.goto(f"{live_server.url}/dashboard/models/")
    cell = page.locator("#cell-builder-general-medium")
    cell.get_by_role("button", name="Change").click()
    select = cell.locator("select")
    expect(select).to_be_focused()
    page.evaluate("window.polls = 0; document.body.addEventListener('htmx:afterRequest', () => window.polls++)")
    # CSP forbids eval, so poll from here rather than with wait_for_function.
    for _ in range(60):
        if page.evaluate("window.polls") >= 2:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.polls") >= 2
    assert page.evaluate("document.activeElement.id") == "select-builder-general-medium"
    select.select_option("o3")
    expect(cell.locator(".badge.source")).to_have_text("global override")


def test_the_strip_follows_the_usage_panels_period(page, live_server, routing, fast_polls):
    page.goto(f"{live_server.url}/dashboard/?period=week")
    strip = page.locator("#provider-strip")
    expect(strip).to_contain_text("anthropic: 0% of its weekly cap")
    page.locator("#usage-panel").get_by_role("link", name="24 h").click()
    expect(strip).to_contain_text("anthropic: no daily cap", timeout=5_000)
    expect(strip).to_contain_text("openai: 0% of its daily cap")


@pytest.mark.parametrize("width", [1280, 400])
def test_every_cells_model_reads_in_full_with_the_demo(page, live_server, width):
    call_command("demo")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/dashboard/")
    models = page.locator("#mapping-panel .cell-model")
    expect(models).to_have_count(36)
    # Every model name lies inside the viewport and none is cut off.
    cut = page.evaluate(
        """() => [...document.querySelectorAll('#mapping-panel .cell-model')].filter((el) => {
            const box = el.getBoundingClientRect();
            return box.width === 0 || box.left < 0 || box.right > window.innerWidth + 0.5
                || el.scrollWidth > Math.ceil(box.width) + 1;
        }).map((el) => el.closest('[data-cell]').id)"""
    )
    assert cut == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if width == 1280:
        high = page.locator("#mapping-panel thead th").filter(has_text="high").first.bounding_box()
        assert high["width"] > 0 and high["x"] + high["width"] <= width


def test_a_cross_site_page_cannot_change_an_override(page, live_server, other_origin, routing):
    other_origin.pages["/attack"] = (
        f'<form id="f" method="post" action="{live_server.url}/dashboard/models/override">'
        '<input name="role" value="builder"><input name="model" value="o3"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    page.goto(f"{other_origin.url}/attack")
    page.wait_for_load_state("networkidle")
    assert not ModelOverride.objects.exists()
