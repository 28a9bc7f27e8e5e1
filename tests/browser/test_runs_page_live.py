import re

import pytest
from playwright.sync_api import expect

from tests.conftest import plan

pytestmark = pytest.mark.django_db(transaction=True)

SIMPLE_BROWSER_SANDBOX = "allow-scripts allow-forms allow-same-origin allow-downloads"


def start_runs(remote, *run_ids):
    for run_id in run_ids:
        remote.post("/runs/start", plan(run_id=run_id, tiers=(("T1", 2),)))


def test_runs_list_follows_the_runs_without_a_reload(page, live_server, remote, fast_polls):
    start_runs(remote, "alpha", "beta")
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if "/dashboard/runs/list" in r.url else None)
    page.goto(f"{live_server.url}/dashboard/runs/")
    rows = page.locator("tr.run-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-run-id", "beta")
    page.evaluate("window.loadedOnce = true")
    page.wait_for_timeout(2_500)
    assert statuses and set(statuses) == {204}

    remote.post("/runs/alpha/phases/P1/update_status", {"state": "COMPLETE"})
    expect(rows.first).to_have_attribute("data-run-id", "alpha", timeout=10_000)
    expect(rows.first).to_contain_text("50.0%")
    expect(rows.first).to_contain_text("PHASE_EXECUTION")
    start_runs(remote, "gamma")
    expect(rows).to_have_count(3, timeout=10_000)
    expect(rows.first).to_have_attribute("data-run-id", "gamma")
    assert page.evaluate("window.loadedOnce") is True
    assert page.js_errors == []


def test_state_filter_and_search_live_in_the_url_and_survive_paging(page, live_server, remote):
    start_runs(remote, "nightly-1", "nightly-2", "weekly-1")
    remote.post("/runs/nightly-2/phases/P1/update_status", {"state": "EXECUTING"})
    page.goto(f"{live_server.url}/dashboard/runs/")
    page.select_option("#runs-state", "RUN_CREATED")
    expect(page).to_have_url(re.compile(r"state=RUN_CREATED"))
    expect(page.locator("tr.run-row")).to_have_count(2)
    page.fill("#runs-search", "NIGHT")
    page.press("#runs-search", "Enter")
    expect(page).to_have_url(re.compile(r"q=NIGHT"))
    expect(page.locator("tr.run-row")).to_have_count(1)
    expect(page.locator("tr.run-row")).to_have_attribute("data-run-id", "nightly-1")
    expect(page.locator("#runs-state")).to_have_value("RUN_CREATED")
    page.click("text=Clear")
    expect(page.locator("tr.run-row")).to_have_count(3)


def test_runs_page_fits_a_400px_pane_without_sideways_scroll(browser, live_server, remote):
    start_runs(remote, "a-rather-long-run-id-that-could-push-the-page-sideways-0001", "short")
    remote.post("/runs/short/phases/P1/update_status", {"state": "EXECUTING"})
    context = browser.new_context(viewport={"width": 400, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server.url}/dashboard/runs/")
    expect(page.locator("tr.run-row")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    expect(page.locator("tr.run-row").first.locator("td[data-label=Progress]")).to_be_visible()
    context.close()


def test_runs_page_works_inside_a_cross_site_sandboxed_frame(page, live_server, remote, other_origin, fast_polls):
    start_runs(remote, *[f"run-{n:02d}" for n in range(55)])
    other_origin.pages["/editor"] = (
        f'<iframe id="pane" sandbox="{SIMPLE_BROWSER_SANDBOX}" width="400" height="800" '
        f'src="{live_server.url}/dashboard/runs/"></iframe>'
    )
    page.goto(f"{other_origin.url}/editor")
    frame = page.frame_locator("#pane")
    expect(frame.locator("tr.run-row")).to_have_count(50)
    frame.locator("a[rel=next]").click()
    expect(frame.locator("tr.run-row")).to_have_count(5)
    expect(frame.locator(".pager")).to_contain_text("Page 2 of 2")
    frame.locator("#runs-state").select_option("PHASE_EXECUTION")
    expect(frame.locator("text=No runs match.")).to_be_visible()
    remote.post("/runs/run-03/phases/P1/update_status", {"state": "EXECUTING"})
    expect(frame.locator("tr.run-row")).to_have_count(1, timeout=10_000)
    framed = next(f for f in page.frames if f.url.startswith(live_server.url))
    assert framed.evaluate("document.documentElement.scrollWidth") <= 400
    assert page.js_errors == []
