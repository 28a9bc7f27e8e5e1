import pytest
from playwright.sync_api import expect

from tests.usage.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def test_usage_panel_switches_period_and_picks_up_new_calls(page, live_server, remote, models_config, fast_polls):
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto(f"{live_server.url}/dashboard/usage/")
    expect(page.locator("#usage-panel")).to_contain_text("0 / 5K tokens")
    remote.post("/api/usage", event(prompt_tokens=4000, completion_tokens=100))
    expect(page.locator("#usage-panel")).to_contain_text("4.1K / 5K tokens · 82.0%", timeout=10_000)
    page.get_by_role("link", name="24 h").click()
    expect(page.locator("#usage-panel")).to_contain_text("4.1K / 1K tokens · 410.0%")
    expect(page.locator("#usage-panel")).to_contain_text("exceeded")
    assert page.url.endswith("/dashboard/usage/")
    # Still at 400 px: nothing wider than the pane.
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    assert page.js_errors == []
