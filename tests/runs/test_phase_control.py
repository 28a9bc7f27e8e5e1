"""A person's moves on a phase: retry a failed one, skip a queued or failed one, approve one at GATE."""

import pytest

from runs.models import Phase, Run, RunEvent
from tests.conftest import plan

pytestmark = pytest.mark.django_db


def act(api, phase_id, action, **fields):
    return api.post(f"/runs/run-1/phases/{phase_id}/control", {"action": action, **fields})


def state(phase_id):
    return Phase.objects.get(phase_id=phase_id).state


@pytest.fixture
def run_1(api):
    api.start(plan())


def test_retry_sends_a_failed_phase_back_to_the_queue(api, run_1):
    api.move("run-1", "P1", "FAILED")
    response = act(api, "P1", "retry", reason="flaky network", by="ana")
    assert response.status_code == 200
    assert response.json()["phase"]["state"] == "QUEUED" and state("P1") == "QUEUED"
    event = RunEvent.objects.get(action="retry")
    assert (event.phase_id, event.from_state, event.to_state, event.actor, event.reason) == (
        "P1",
        "FAILED",
        "QUEUED",
        "ana",
        "flaky network",
    )


@pytest.mark.parametrize("before", ["QUEUED", "FAILED"])
def test_skip_marks_a_queued_or_failed_phase_skipped(api, run_1, before):
    api.move("run-1", "P1", before)
    response = act(api, "P1", "skip", reason="done by hand")
    assert response.status_code == 200
    assert state("P1") == "SKIPPED"


def test_approve_completes_a_phase_waiting_at_gate(api, run_1):
    api.move("run-1", "P1", "GATE")
    assert act(api, "P1", "approve", reason="read the diff").status_code == 200
    assert state("P1") == "COMPLETE"
    assert api.status("run-1")["completed_phases"] == 1


@pytest.mark.parametrize(
    "before, action, message",
    [
        ("QUEUED", "retry", "Phase 'P1' is QUEUED; retry applies to a phase that is FAILED"),
        ("EXECUTING", "skip", "Phase 'P1' is EXECUTING; skip applies to a phase that is QUEUED or FAILED"),
        ("COMPLETE", "approve", "Phase 'P1' is COMPLETE; approve applies to a phase that is GATE"),
    ],
)
def test_an_action_that_does_not_apply_is_409_saying_why(api, run_1, before, action, message):
    api.move("run-1", "P1", before)
    version = Run.objects.get().version
    response = act(api, "P1", action)
    assert response.status_code == 409
    assert response.json() == {"error": message, "details": {"action": "illegal move"}}
    assert state("P1") == before and Run.objects.get().version == version


def test_skipping_the_last_phase_left_finishes_the_run(api):
    api.start(plan(tiers=(("T1", 2),)))
    api.move("run-1", "P1", "COMPLETE")
    act(api, "P2", "skip", reason="not needed")
    run = Run.objects.get()
    assert run.state == "DONE_SUCCESS"
    finish = RunEvent.objects.filter(phase_id="", to_state="DONE_SUCCESS").get()
    assert finish.actor == "server" and finish.reason == "every phase is finished"


def test_an_unknown_phase_action_is_400(api, run_1):
    response = act(api, "P1", "pause")
    assert response.status_code == 400
    assert response.json()["details"] == {"action": "must be one of: retry, skip, approve"}
