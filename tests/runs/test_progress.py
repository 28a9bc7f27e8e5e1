import datetime as dt

import pytest

from autopack_site import clock
from runs.models import Phase, Run
from runs.progress import run_progress
from tests.conftest import plan

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def at(minutes):
    return clock.frozen_at(T0 + dt.timedelta(minutes=minutes))


def test_status_of_a_new_run(api):
    api.start()
    status = api.status("run-1")
    assert status == {
        "run_id": "run-1",
        "state": "RUN_CREATED",
        "current_tier_name": "Tier T1",
        "current_phase_name": "Phase 1",
        "current_tier_index": 0,
        "current_phase_index": 0,
        "total_tiers": 2,
        "total_phases": 4,
        "completed_tiers": 0,
        "completed_phases": 0,
        "percent_complete": 0.0,
        "tiers_percent_complete": 0.0,
        "tokens_used": 0,
        "tokens_reported": 0,
        "tokens_metered": 0,
        "token_cap": 5_000_000,
        "token_utilization": 0.0,
        "minor_issues_count": 0,
        "major_issues_count": 0,
        "elapsed_seconds": 0,
        "eta_seconds": None,
        "paused": False,
        "paused_at": None,
        "paused_by": None,
        "pause_reason": None,
        "failure_reason": None,
    }


def test_status_follows_phases_as_they_move(api):
    api.start(plan(token_cap=10_000))
    api.move("run-1", "P1", "COMPLETE", tokens_used=2_500)
    api.move("run-1", "P2", "SKIPPED")
    api.move("run-1", "P3", "EXECUTING", tokens_used=500)
    status = api.status("run-1")
    assert status["completed_phases"] == 2 and status["percent_complete"] == 50.0
    assert status["completed_tiers"] == 1 and status["tiers_percent_complete"] == 50.0
    assert (status["current_tier_name"], status["current_phase_name"]) == ("Tier T2", "Phase 3")
    assert (status["current_tier_index"], status["current_phase_index"]) == (1, 2)
    assert status["token_utilization"] == 30.0


def test_current_phase_is_the_first_unfinished_phase_of_the_current_tier(api):
    api.start(plan(tiers=(("T1", 3),)))
    api.move("run-1", "P2", "EXECUTING")
    api.move("run-1", "P1", "COMPLETE")
    assert api.status("run-1")["current_phase_name"] == "Phase 2"


def test_run_with_no_phases(api):
    api.start({"run": {"run_id": "empty"}})
    status = api.status("empty")
    assert (status["total_phases"], status["percent_complete"], status["eta_seconds"]) == (0, 0.0, None)
    assert status["current_phase_name"] is None and status["state"] == "RUN_CREATED"


def test_all_phases_skipped_is_complete_and_successful(api):
    api.start(plan(tiers=(("T1", 2),)))
    api.move("run-1", "P1", "SKIPPED")
    api.move("run-1", "P2", "SKIPPED")
    status = api.status("run-1")
    assert (status["state"], status["percent_complete"], status["completed_phases"]) == (
        "DONE_SUCCESS",
        100.0,
        2,
    )
    assert status["current_phase_name"] is None and status["eta_seconds"] == 0


def test_a_failed_phase_does_not_count_as_done(api):
    api.start(plan(tiers=(("T1", 2),)))
    api.move("run-1", "P1", "FAILED")
    status = api.status("run-1")
    assert (status["completed_phases"], status["percent_complete"]) == (0, 0.0)
    assert status["current_phase_name"] == "Phase 2"


def test_an_empty_tier_is_skipped_and_does_not_hold_up_the_run(api):
    api.start(plan(tiers=(("T1", 1), ("EMPTY", 0), ("T3", 1))))
    api.move("run-1", "P1", "COMPLETE")
    status = api.status("run-1")
    assert status["current_tier_name"] == "Tier T3"
    assert status["completed_tiers"] == 2 and status["total_tiers"] == 3
    api.move("run-1", "P2", "COMPLETE")
    assert api.status("run-1")["state"] == "DONE_SUCCESS"


def test_token_utilization_passes_100_when_the_cap_is_passed(api):
    api.start(plan(token_cap=100))
    api.move("run-1", "P1", "EXECUTING", tokens_used=250)
    assert api.status("run-1")["token_utilization"] == 250.0


def test_eta_is_mean_finished_duration_times_phases_left(api):
    api.start(plan(tiers=(("T1", 4),)))
    with at(0):
        api.move("run-1", "P1", "EXECUTING")
    with at(10):
        api.move("run-1", "P1", "COMPLETE")
        api.move("run-1", "P2", "EXECUTING")
    with at(14):
        status = api.status("run-1")
    # One finished phase took 10 min: P2 has 6 min left, P3 and P4 10 min each.
    assert status["eta_seconds"] == (6 + 10 + 10) * 60
    assert status["elapsed_seconds"] == 14 * 60


def test_eta_never_goes_negative_for_an_overrunning_phase(api):
    api.start(plan(tiers=(("T1", 2),)))
    with at(0):
        api.move("run-1", "P1", "EXECUTING")
    with at(5):
        api.move("run-1", "P1", "COMPLETE")
        api.move("run-1", "P2", "EXECUTING")
    with at(60):
        assert api.status("run-1")["eta_seconds"] == 0


def test_elapsed_stops_when_the_run_finishes(api):
    api.start(plan(tiers=(("T1", 1),)))
    with at(0):
        api.move("run-1", "P1", "EXECUTING")
    with at(3):
        api.move("run-1", "P1", "COMPLETE")
    with at(30):
        status = api.status("run-1")
    assert (status["elapsed_seconds"], status["eta_seconds"]) == (180, 0)


def test_status_of_unknown_run_is_404(api):
    response = api.client.get("/dashboard/runs/nope/status")
    assert response.status_code == 404 and response.json()["error"] == "Run 'nope' not found"


def test_progress_from_aggregates_agrees_with_progress_from_loaded_phases(api):
    api.start(plan(tiers=(("T1", 3), ("T2", 3))))
    with at(0):
        api.move("run-1", "P1", "EXECUTING")
    with at(30):
        api.move("run-1", "P1", "COMPLETE")
        api.move("run-1", "P2", "SKIPPED")
        api.move("run-1", "P3", "EXECUTING")
    with at(50):
        api.move("run-1", "P3", "FAILED")
        api.move("run-1", "P4", "EXECUTING")
    run = Run.objects.get()
    with at(70):
        quick, full = run_progress(run), run_progress(run, phases=list(Phase.objects.filter(run=run)))
    assert quick.as_status() == full.as_status()
    assert (quick.current_phase.phase_id, quick.current_tier.tier_id) == ("P4", "T2")
    # Finished phases took 30 and 20 minutes; P4 has run 20 of its 25, P5 and P6 wait.
    assert quick.eta_seconds == full.eta_seconds == 5 * 60 + 2 * 25 * 60
