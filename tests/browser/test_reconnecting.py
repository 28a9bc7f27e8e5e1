import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_poll_that_meets_a_503_keeps_the_panel_and_says_reconnecting(page, live_server, models_config, fast_polls):
    page.goto(f"{live_server.url}/dashboard/usage/")
    panel = page.locator("#usage-panel")
    expect(panel).to_contain_text("tokens")
    before = panel.inner_html()
    outage = {"on": True}

    def answer(route):
        if outage["on"]:
            route.fulfill(
                status=503,
                headers={"Retry-After": "5", "Content-Type": "application/json"},
                body='{"error": "Database unavailable; try again shortly", "details": {}}',
            )
        else:
            route.continue_()

    page.route("**/dashboard/usage/panel*", answer)
    status = page.locator("[data-connection-status]")
    expect(status).to_be_visible(timeout=5000)
    expect(status).to_have_text("Reconnecting…")
    assert "Database unavailable" not in panel.inner_text()
    assert panel.inner_html() == before
    outage["on"] = False
    expect(status).to_be_hidden(timeout=5000)
    assert page.js_errors == []
