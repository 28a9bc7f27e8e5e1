"""Pause, resume, cancel and phase actions from the pages, each confirmed in the page's own dialog."""

import pytest
from playwright.sync_api import expect

from runs.models import Phase, Run, RunEvent
from tests.conftest import plan

pytestmark = pytest.mark.django_db(transaction=True)


def confirm(scope, reason: str, button: str):
    dialog = scope.locator("#control-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("textarea[name=reason]").fill(reason)
    dialog.get_by_role("button", name=button, exact=True).click()


def test_pause_and_resume_from_the_run_page(page, live_server, remote):
    remote.post("/runs/start", plan())
    remote.post("/runs/run-1/phases/P1/update_status", {"state": "EXECUTING"})
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    page.get_by_role("button", name="Pause…").click()
    expect(page.locator("#control-dialog")).to_contain_text("LlmService refuses this run's calls")
    confirm(page, "Reading the diff first", "Pause")
    expect(page.locator("#control-dialog")).to_be_hidden()
    expect(page.locator("#run-summary .badge.paused")).to_have_text("paused")
    expect(page.locator("[data-paused]")).to_contain_text("Paused by dashboard")
    expect(page.locator("[data-paused]")).to_contain_text("“Reading the diff first”")
    run = Run.objects.get()
    assert (run.is_paused, run.paused_by, run.pause_reason, run.state) == (
        True,
        "dashboard",
        "Reading the diff first",
        "PHASE_EXECUTION",
    )

    page.get_by_role("button", name="Resume…").click()
    confirm(page, "Looks right", "Resume")
    expect(page.locator("#run-summary .badge.paused")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause…")).to_be_visible()
    assert not Run.objects.get().is_paused
    assert list(RunEvent.objects.filter(action__in=("pause", "resume")).values_list("action", "reason")) == [
        ("pause", "Reading the diff first"),
        ("resume", "Looks right"),
    ]
    assert page.js_errors == []


def test_back_closes_the_dialog_and_changes_nothing(page, live_server, remote):
    remote.post("/runs/start", plan())
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    page.get_by_role("button", name="Cancel run…").click()
    page.locator("#control-dialog textarea").fill("not sure")
    page.get_by_role("button", name="Back").click()
    expect(page.locator("#control-dialog")).to_be_hidden()
    assert Run.objects.get().state == "RUN_CREATED"
    assert not RunEvent.objects.filter(action="cancel").exists()


def test_cancel_from_the_dashboard_finishes_the_run(page, live_server, remote):
    remote.post("/runs/start", plan())
    page.goto(f"{live_server.url}/dashboard/?run=run-1")
    page.get_by_role("button", name="Cancel run…").click()
    expect(page.locator("#control-dialog")).to_contain_text("This cannot be undone")
    confirm(page, "Wrong branch", "Cancel run")
    summary = page.locator("#run-summary")
    expect(summary.locator(".badge").first).to_have_text("DONE_FAILED_REQUIRES_HUMAN_REVIEW")
    expect(summary).to_contain_text("cancelled: Wrong branch")
    expect(summary.locator("[data-control]")).to_have_count(0)
    run = Run.objects.get()
    assert (run.state, run.failure_reason) == ("DONE_FAILED_REQUIRES_HUMAN_REVIEW", "cancelled: Wrong branch")


def test_a_refused_control_says_why_in_the_dialog(page, live_server, remote):
    remote.post("/runs/start", plan())
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    page.get_by_role("button", name="Pause…").click()
    # Someone else pauses the run while the dialog is open.
    remote.post("/runs/run-1/control", {"action": "pause", "by": "ana"})
    confirm(page, "me too", "Pause")
    expect(page.locator("#run-summary-error")).to_contain_text("Not done: Run 'run-1' is already paused (by ana")
    expect(page.locator("#control-dialog")).to_be_visible()
    assert Run.objects.get().paused_by == "ana"


def test_retry_skip_and_approve_phases_from_the_run_page(page, live_server, remote):
    remote.post("/runs/start", plan())
    remote.post("/runs/run-1/phases/P1/update_status", {"state": "FAILED"})
    remote.post("/runs/run-1/phases/P2/update_status", {"state": "GATE"})
    page.goto(f"{live_server.url}/dashboard/runs/run-1/")
    p1 = page.locator("tbody.phase-row", has_text="Phase 1")
    p2 = page.locator("tbody.phase-row", has_text="Phase 2")
    p3 = page.locator("tbody.phase-row", has_text="Phase 3")

    p1.get_by_role("button", name="Retry…").click()
    expect(page.locator("#control-dialog-title")).to_have_text("Retry phase P1")
    confirm(page, "flaky network", "Retry")
    expect(p1.locator(".badge").first).to_have_text("QUEUED")

    p2.get_by_role("button", name="Approve…").click()
    confirm(page, "read the diff", "Approve")
    expect(p2.locator(".badge").first).to_have_text("COMPLETE")

    p3.get_by_role("button", name="Skip…").click()
    confirm(page, "done by hand", "Skip")
    expect(p3.locator(".badge").first).to_have_text("SKIPPED")
    expect(page.locator("#run-summary")).to_contain_text("2 of 4 phases done")

    states = dict(Phase.objects.values_list("phase_id", "state"))
    assert states == {"P1": "QUEUED", "P2": "COMPLETE", "P3": "SKIPPED", "P4": "QUEUED"}
    assert list(RunEvent.objects.exclude(action="state").values_list("action", "phase_id", "reason")) == [
        ("retry", "P1", "flaky network"),
        ("approve", "P2", "read the diff"),
        ("skip", "P3", "done by hand"),
    ]
    assert page.js_errors == []
