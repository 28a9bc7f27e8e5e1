import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from autopack_site import clock
from tests.conftest import plan

pytestmark = pytest.mark.django_db(transaction=True)

SIMPLE_BROWSER_SANDBOX = "allow-scripts allow-forms allow-same-origin allow-downloads"


def progress_value(scope):
    return scope.locator('#run-summary [aria-label="Run progress"]')


def test_progress_bar_moves_without_a_reload(page, live_server, remote, fast_polls):
    remote.post("/runs/start", plan())
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    expect(progress_value(page)).to_have_attribute("aria-valuenow", "0.0")
    page.evaluate("window.loadedOnce = true")

    remote.post("/runs/run-1/phases/P1/update_status", {"state": "COMPLETE", "tokens_used": 1500})

    expect(progress_value(page)).to_have_attribute("aria-valuenow", "25.0", timeout=10_000)
    expect(page.locator("#run-summary")).to_contain_text("1 of 4 phases done")
    row = page.locator("tbody.phase-row", has_text="Phase 1")
    expect(row).to_contain_text("COMPLETE")
    expect(page).to_have_title(re.compile(r"PHASE_EXECUTION · 25.0%"))
    assert page.evaluate("window.loadedOnce") is True
    assert page.js_errors == []


def test_polling_stops_when_the_run_finishes(page, live_server, remote, fast_polls):
    remote.post("/runs/start", plan(tiers=(("T1", 1),)))
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    remote.post("/runs/run-1/phases/P1/update_status", {"state": "COMPLETE"})
    expect(page.locator("#run-summary .badge").first).to_have_text("DONE_SUCCESS", timeout=10_000)
    expect(page.locator("#run-summary")).not_to_have_attribute("hx-trigger", re.compile("."))
    polls = []
    page.on("request", lambda request: polls.append(request.url) if "/progress" in request.url else None)
    page.wait_for_timeout(2_500)
    assert polls == []


def test_phase_filter_hides_rows_and_survives_a_reload(page, live_server, remote):
    remote.post("/runs/start", plan(tiers=(("T1", 3),)))
    remote.post("/runs/run-1/phases/P2/update_status", {"state": "EXECUTING"})
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    page.select_option("#phase-filter-state", "EXECUTING")
    expect(page.locator("tbody.phase-row:visible")).to_have_count(1)
    expect(page.locator("[data-filter-count]")).to_have_text("1 of 3 phases shown")
    page.reload()
    expect(page.locator("tbody.phase-row:visible")).to_have_count(1)
    page.fill("#phase-filter-text", "")
    page.select_option("#phase-filter-state", "")
    page.fill("#phase-filter-text", "phase 3")
    expect(page.locator("tbody.phase-row:visible")).to_have_count(1)


def test_dashboard_inside_a_cross_site_sandboxed_frame_renders_and_refreshes(
    page, live_server, remote, other_origin, fast_polls
):
    remote.post("/runs/start", plan())
    other_origin.pages["/editor"] = (
        f'<iframe id="pane" sandbox="{SIMPLE_BROWSER_SANDBOX}" width="420" height="800" '
        f'src="{live_server.url}/dashboard/?run=run-1"></iframe>'
    )
    page.goto(f"{other_origin.url}/editor")
    frame = page.frame_locator("#pane")
    expect(frame.locator("#run-summary")).to_be_visible()
    expect(progress_value(frame)).to_have_attribute("aria-valuenow", "0.0")
    remote.post("/runs/run-1/phases/P1/update_status", {"state": "COMPLETE"})
    expect(progress_value(frame)).to_have_attribute("aria-valuenow", "25.0", timeout=10_000)


def test_admin_refuses_to_render_inside_a_frame(page, live_server, other_origin):
    other_origin.pages["/editor"] = f'<iframe id="pane" src="{live_server.url}/admin/login/"></iframe>'
    page.goto(f"{other_origin.url}/editor")
    page.wait_for_timeout(1_000)
    admin_frame = page.frames[1]
    assert admin_frame.locator("#id_username").count() == 0


def test_the_eta_counts_down_and_then_says_it_is_overdue(page, live_server, api):
    """With nothing new to poll, the estimate still moves as time passes instead of standing still."""
    api.start(plan(tiers=(("T1", 2),)))
    now = clock.now()
    with clock.frozen_at(now - dt.timedelta(seconds=4)):
        api.move("run-1", "P1", "EXECUTING")
    with clock.frozen_at(now - dt.timedelta(seconds=2)):
        api.move("run-1", "P1", "COMPLETE")
        api.move("run-1", "P2", "EXECUTING")
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    eta = page.locator("[data-eta-seconds]")
    expect(eta).to_have_text(re.compile(r"^overdue by \d+s$"), timeout=6_000)
    assert page.js_errors == []
