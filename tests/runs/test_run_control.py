"""Pause, resume and cancel over POST /runs/{run_id}/control, and the directive GET answers executors."""

import datetime as dt

import pytest
from django.contrib.auth.models import User

from autopack_site import clock
from runs.models import Run, RunEvent
from tests.conftest import plan

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def control(api, action, run_id="run-1", **fields):
    return api.post(f"/runs/{run_id}/control", {"action": action, **fields})


@pytest.fixture
def run_1(api):
    api.start(plan())
    assert api.move("run-1", "P1", "EXECUTING").status_code == 200
    return Run.objects.get(run_id="run-1")


def test_pause_is_a_flag_that_keeps_the_state(api, run_1):
    with clock.frozen_at(T0):
        response = control(api, "pause", reason="checking the plan", by="ana")
    assert response.status_code == 200
    body = response.json()
    assert body["directive"] == "pause" and body["state"] == "PHASE_EXECUTION"
    assert (body["paused"], body["paused_by"], body["pause_reason"]) == (True, "ana", "checking the plan")
    assert body["paused_at"] == T0.isoformat()
    assert body["last_action"] == {"action": "pause", "by": "ana", "reason": "checking the plan", "at": T0.isoformat()}
    run = Run.objects.get()
    assert run.state == "PHASE_EXECUTION" and run.is_paused and run.version == run_1.version + 1


def test_status_and_run_json_say_who_paused_and_why(api, run_1):
    control(api, "pause", reason="checking the plan", by="ana")
    status = api.status("run-1")
    assert (status["state"], status["paused"], status["paused_by"], status["pause_reason"]) == (
        "PHASE_EXECUTION",
        True,
        "ana",
        "checking the plan",
    )
    run = api.get("/runs/run-1").json()
    assert run["paused"] is True and run["paused_by"] == "ana"


def test_resume_lifts_the_pause(api, run_1):
    control(api, "pause", reason="a look")
    response = control(api, "resume", reason="looks fine")
    assert response.status_code == 200
    body = response.json()
    assert (body["directive"], body["paused"], body["paused_by"]) == ("continue", False, None)
    assert body["last_action"]["action"] == "resume" and body["last_action"]["reason"] == "looks fine"


def test_resuming_a_run_that_is_not_paused_is_409(api, run_1):
    response = control(api, "resume")
    assert response.status_code == 409
    assert response.json() == {
        "error": "Run 'run-1' is not paused; only a paused run can resume",
        "details": {"action": "illegal move"},
    }


def test_pausing_a_paused_run_is_409(api, run_1):
    control(api, "pause", by="ana")
    response = control(api, "pause", by="ben")
    assert response.status_code == 409
    assert "already paused (by ana" in response.json()["error"]
    assert Run.objects.get().paused_by == "ana"


def test_cancel_finishes_the_run_for_human_review_with_the_reason(api, run_1):
    with clock.frozen_at(T0):
        response = control(api, "cancel", reason="wrong branch", by="ana")
    assert response.status_code == 200
    assert response.json()["directive"] == "stop"
    run = Run.objects.get()
    assert run.state == "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    assert run.failure_reason == "cancelled: wrong branch"
    assert run.completed_at == T0
    event = RunEvent.objects.get(action="cancel")
    assert (event.actor, event.reason, event.from_state, event.to_state) == (
        "ana",
        "wrong branch",
        "PHASE_EXECUTION",
        "DONE_FAILED_REQUIRES_HUMAN_REVIEW",
    )


def test_cancel_without_a_reason_names_who_cancelled(api, run_1):
    control(api, "cancel")
    assert Run.objects.get().failure_reason == "cancelled: by api, no reason given"


def test_a_paused_run_can_be_cancelled_and_the_pause_goes(api, run_1):
    control(api, "pause")
    control(api, "cancel", reason="enough")
    run = Run.objects.get()
    assert run.state == "DONE_FAILED_REQUIRES_HUMAN_REVIEW" and not run.is_paused


@pytest.mark.parametrize(
    "url, body",
    [
        ("/runs/run-1/phases/P1/update_status", {"state": "COMPLETE"}),
        ("/runs/run-1/phases/P2/builder_result", {"status": "success"}),
        ("/runs/run-1/phases/P1/auditor_result", {"recommendation": "approve"}),
        ("/runs/run-1/phases/P1/record_issue", {"issue_key": "k", "severity": "minor"}),
        ("/runs/run-1/update_status", {"state": "GATE"}),
        ("/runs/run-1/phases/P1/control", {"action": "skip"}),
        ("/runs/run-1/control", {"action": "resume"}),
        ("/runs/run-1/control", {"action": "cancel"}),
    ],
)
def test_a_cancelled_run_refuses_every_later_update_with_409(api, run_1, url, body):
    control(api, "cancel", reason="wrong branch")
    before = Run.objects.get()
    response = api.post(url, body)
    assert response.status_code == 409
    error = response.json()["error"]
    assert "is finished (DONE_FAILED_REQUIRES_HUMAN_REVIEW" in error and "cancelled: wrong branch" in error
    after = Run.objects.get()
    assert (after.version, after.state) == (before.version, before.state)


def test_get_control_tells_a_polling_executor_what_to_do(api, run_1):
    directive = lambda: api.get("/runs/run-1/control").json()["directive"]  # noqa: E731
    assert directive() == "continue"
    control(api, "pause")
    assert directive() == "pause"
    control(api, "resume")
    assert directive() == "continue"
    control(api, "cancel")
    assert directive() == "stop"
    assert api.get("/runs/run-1/control").json()["failure_reason"] == "cancelled: by api, no reason given"


def test_get_control_of_an_unknown_run_is_404(api):
    response = api.get("/runs/nope/control")
    assert response.status_code == 404
    assert response.json() == {"error": "Run 'nope' not found", "details": {}}


def test_an_unknown_action_is_400(api, run_1):
    response = control(api, "stop")
    assert response.status_code == 400
    assert response.json()["details"] == {"action": "must be one of: pause, resume, cancel"}


def test_a_finished_run_cannot_be_paused(api):
    api.start(plan(tiers=(("T1", 1),)))
    api.move("run-1", "P1", "COMPLETE")
    response = control(api, "pause")
    assert response.status_code == 409
    assert response.json()["error"] == "Run 'run-1' is finished (DONE_SUCCESS); it cannot pause"


def test_a_login_names_who_paused(client, api, run_1):
    client.force_login(User.objects.create_user("ana", is_staff=True))
    control(api, "pause", by="someone else")
    assert Run.objects.get().paused_by == "ana"


def test_a_cross_site_origin_cannot_pause(api, run_1):
    response = api.post("/runs/run-1/control", {"action": "pause"}, Origin="https://evil.example")
    assert response.status_code == 403
    assert not Run.objects.get().is_paused


def test_a_paused_run_that_finishes_is_no_longer_paused(api):
    """Pause only holds back calls: the executor may still report, and a finished run takes no calls at all."""
    api.start(plan(tiers=(("T1", 1),)))
    control(api, "pause", reason="a look")
    assert api.move("run-1", "P1", "COMPLETE").status_code == 200
    run = Run.objects.get()
    assert (run.state, run.is_paused) == ("DONE_SUCCESS", False)
    assert api.get("/runs/run-1/control").json()["directive"] == "stop"
