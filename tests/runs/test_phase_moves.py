import pytest

from runs.models import Phase, PhaseIssue, Run, Tier
from tests.conftest import plan

pytestmark = pytest.mark.django_db


def states(run_id="run-1"):
    run = Run.objects.get(run_id=run_id)
    return run.state, {t.tier_id: t.state for t in Tier.objects.filter(run=run)}


def test_run_leaves_run_created_when_its_first_phase_starts(api):
    api.start()
    response = api.move("run-1", "P1", "EXECUTING")
    assert response.status_code == 200
    run = Run.objects.get()
    assert run.state == "PHASE_EXECUTION" and run.started_at is not None
    assert states()[1] == {"T1": "IN_PROGRESS", "T2": "PENDING"}


def test_tier_completes_when_all_its_phases_are_complete_or_skipped(api):
    api.start()
    api.move("run-1", "P1", "COMPLETE")
    api.move("run-1", "P2", "SKIPPED")
    assert states()[1]["T1"] == "COMPLETE"
    assert Tier.objects.get(tier_id="T1").completed_at is not None


def test_tier_fails_when_a_phase_failed_and_none_is_running(api):
    api.start()
    api.move("run-1", "P1", "FAILED")
    api.move("run-1", "P2", "EXECUTING")
    assert states()[1]["T1"] == "IN_PROGRESS"
    api.move("run-1", "P2", "COMPLETE")
    assert states()[1]["T1"] == "FAILED"


def test_run_finishes_when_last_phase_completes(api):
    api.start()
    for phase_id in ("P1", "P2", "P3"):
        api.move("run-1", phase_id, "COMPLETE")
    assert Run.objects.get().state == "PHASE_EXECUTION"
    api.move("run-1", "P4", "SKIPPED")
    run = Run.objects.get()
    assert run.state == "DONE_SUCCESS" and run.completed_at is not None
    assert states()[1] == {"T1": "COMPLETE", "T2": "COMPLETE"}


def test_run_needs_human_review_when_any_phase_failed(api):
    api.start()
    for phase_id, state in (("P1", "COMPLETE"), ("P2", "FAILED"), ("P3", "COMPLETE"), ("P4", "COMPLETE")):
        api.move("run-1", phase_id, state)
    run = Run.objects.get()
    assert run.state == "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    assert "P2" in run.failure_reason


def test_an_unfinished_phase_may_move_back_to_executing(api):
    api.start()
    api.move("run-1", "P1", "EXECUTING")
    api.move("run-1", "P1", "GATE")
    assert api.move("run-1", "P1", "EXECUTING").status_code == 200


def test_a_finished_phase_may_be_reopened_while_the_run_is_not_finished(api):
    api.start()
    api.move("run-1", "P1", "COMPLETE")
    response = api.move("run-1", "P1", "EXECUTING")
    assert response.status_code == 200
    phase = Phase.objects.get(phase_id="P1")
    assert phase.state == "EXECUTING" and phase.completed_at is None
    assert states()[1]["T1"] == "IN_PROGRESS"


def test_nothing_in_a_finished_run_moves(api):
    api.start(plan(tiers=(("T1", 1),)))
    api.move("run-1", "P1", "COMPLETE")
    response = api.move("run-1", "P1", "QUEUED")
    assert response.status_code == 409
    assert "finished" in response.json()["error"]
    assert Phase.objects.get().state == "COMPLETE"


def test_finished_phase_cannot_jump_to_another_finished_state(api):
    api.start()
    api.move("run-1", "P1", "FAILED")
    response = api.move("run-1", "P1", "COMPLETE")
    assert response.status_code == 409
    assert "reopened" in response.json()["error"]


def test_tokens_and_issue_counts_roll_up_to_tier_and_run(api):
    api.start()
    api.move("run-1", "P1", "EXECUTING", tokens_used=1000, minor_issues_count=2)
    api.move("run-1", "P3", "EXECUTING", tokens_used=500, major_issues_count=1)
    api.move("run-1", "P1", "GATE", tokens_used=1200)
    run = Run.objects.get()
    assert (run.tokens_used, run.minor_issues_count, run.major_issues_count) == (1700, 2, 1)
    assert Tier.objects.get(tier_id="T1").tokens_used == 1200
    assert api.status("run-1")["tokens_used"] == 1700


def test_update_status_records_attempts(api):
    api.start()
    api.move("run-1", "P1", "EXECUTING", builder_attempts=2, auditor_attempts=1)
    phase = Phase.objects.get(phase_id="P1")
    assert (phase.builder_attempts, phase.auditor_attempts) == (2, 1)


def test_recorded_issues_replace_reported_counts_and_count_once_per_key(api):
    api.start()
    api.move("run-1", "P1", "EXECUTING", minor_issues_count=5)
    issue = {"issue_key": "lint", "severity": "minor", "source": "auditor", "category": "style"}
    first = api.post("/runs/run-1/phases/P1/record_issue", issue)
    again = api.post("/runs/run-1/phases/P1/record_issue", {**issue, "evidence_refs": ["a.py:1"]})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["issue"]["occurrences"] == 2
    assert again.json()["issue"]["evidence_refs"] == ["a.py:1"]
    phase = Phase.objects.get(phase_id="P1")
    assert (phase.minor_issues_count, phase.major_issues_count) == (1, 0)
    api.post("/runs/run-1/phases/P1/record_issue", {"issue_key": "sql", "severity": "major"})
    run = Run.objects.get()
    assert (run.minor_issues_count, run.major_issues_count) == (1, 1)


def test_same_issue_key_in_two_phases_counts_twice(api):
    api.start()
    for phase_id in ("P1", "P2"):
        api.post(f"/runs/run-1/phases/{phase_id}/record_issue", {"issue_key": "k", "severity": "minor"})
    assert Run.objects.get().minor_issues_count == 2


def test_builder_success_awaits_audit_and_approve_completes(api):
    api.start()
    response = api.post(
        "/runs/run-1/phases/P1/builder_result",
        {
            "status": "success",
            "builder_attempts": 1,
            "tokens_used": 4000,
            "patch_content": "diff --git a b",
            "suggested_issues": [{"issue_key": "todo-left", "severity": "minor", "category": "style"}],
        },
    )
    assert response.status_code == 200
    assert response.json()["phase"]["state"] == "GATE"
    assert PhaseIssue.objects.get().source == "builder"
    response = api.post(
        "/runs/run-1/phases/P1/auditor_result",
        {"recommendation": "approve", "auditor_attempts": 1, "tokens_used": 5000, "issues_found": []},
    )
    phase = response.json()["phase"]
    # The Auditor's tokens add to the Builder's.
    assert (phase["state"], phase["tokens_used"], phase["auditor_attempts"]) == ("COMPLETE", 9000, 1)


@pytest.mark.parametrize(("status", "expected"), [("success", "GATE"), ("needs_review", "GATE"), ("failed", "FAILED")])
def test_builder_status_moves_the_phase(api, status, expected):
    api.start()
    api.post("/runs/run-1/phases/P1/builder_result", {"status": status})
    assert Phase.objects.get(phase_id="P1").state == expected


@pytest.mark.parametrize(
    ("recommendation", "expected"), [("approve", "COMPLETE"), ("revise", "EXECUTING"), ("escalate", "FAILED")]
)
def test_auditor_recommendation_moves_the_phase(api, recommendation, expected):
    api.start()
    api.move("run-1", "P1", "GATE")
    api.post("/runs/run-1/phases/P1/auditor_result", {"recommendation": recommendation})
    assert Phase.objects.get(phase_id="P1").state == expected


def test_auditor_issues_are_recorded_with_auditor_source(api):
    api.start()
    api.post(
        "/runs/run-1/phases/P1/auditor_result",
        {"recommendation": "revise", "issues_found": [{"issue_key": "xss", "severity": "major"}]},
    )
    issue = PhaseIssue.objects.get()
    assert (issue.source, issue.severity) == ("auditor", "major")
    assert Run.objects.get().major_issues_count == 1


def test_auditor_request_puts_the_phase_in_gate_with_or_without_a_body(api):
    api.start()
    no_body = api.client.generic("POST", "/runs/run-1/phases/P1/auditor_request", CONTENT_TYPE="application/json")
    assert no_body.status_code == 200
    assert Phase.objects.get(phase_id="P1").state == "GATE"
    assert api.post("/runs/run-1/phases/P2/auditor_request", {"patch_content": "x"}).status_code == 200


@pytest.mark.parametrize("state", ["GATE", "CI_RUNNING", "SNAPSHOT_CREATED"])
def test_run_takes_the_executors_run_level_states(api, state):
    api.start()
    response = api.post("/runs/run-1/update_status", {"state": state})
    assert response.status_code == 200
    assert Run.objects.get().state == state


def test_run_failure_state_finishes_the_run_with_its_reason(api):
    api.start()
    response = api.post(
        "/runs/run-1/update_status", {"state": "DONE_FAILED_BUDGET_EXHAUSTED", "failure_reason": "cap hit"}
    )
    assert response.json()["state"] == "DONE_FAILED_BUDGET_EXHAUSTED"
    run = Run.objects.get()
    assert run.completed_at is not None and run.failure_reason == "cap hit"
    assert api.move("run-1", "P1", "EXECUTING").status_code == 409


def test_every_write_raises_the_run_version_and_marks_the_changed_phase(api):
    api.start()
    before = Run.objects.get().version
    api.move("run-1", "P2", "EXECUTING")
    run = Run.objects.get()
    assert run.version == before + 1
    assert Phase.objects.get(phase_id="P2").version == run.version
    assert Phase.objects.get(phase_id="P1").version < run.version
