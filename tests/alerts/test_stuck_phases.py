import datetime as dt

import pytest

from alerts.models import Alert
from alerts.stuck import stuck_phases
from alerts.sweep import raise_due_alerts
from autopack_site import clock
from tests.conftest import plan
from tests.usage.conftest import NOW, event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def hung_phase(api):
    """run-1's P1 moved to EXECUTING at NOW, its last LLM call two minutes later, then silence."""
    with clock.frozen_at(NOW):
        api.start(plan())
        assert api.move("run-1", "P1", "EXECUTING").status_code == 200
    with clock.frozen_at(NOW + 2 * MINUTE):
        call = event(run_id="run-1", phase_id="P1", model="gpt-4o-mini", request_id="last")
        assert record_usage_events([call], atomic_batch=True).imported == 1
    return NOW + 2 * MINUTE


def test_a_phase_looks_stuck_only_after_the_threshold_has_passed(hung_phase, settings):
    settings.AUTOPACK_STUCK_MINUTES = 15
    assert stuck_phases(now=hung_phase + 15 * MINUTE) == []
    [stuck] = stuck_phases(now=hung_phase + 15 * MINUTE + dt.timedelta(seconds=1))
    assert (stuck.run_id, stuck.phase_id, stuck.state) == ("run-1", "P1", "EXECUTING")
    # Recording the call touched the phase too: both say when it was last heard from.
    assert stuck.last_update == hung_phase and stuck.last_call_at == hung_phase
    assert stuck.last_call_model == "gpt-4o-mini" and stuck.quiet_seconds == 15 * 60 + 1


def test_a_status_update_clears_the_stuck_look(hung_phase, api):
    later = hung_phase + 30 * MINUTE
    assert len(stuck_phases(now=later)) == 1
    with clock.frozen_at(later):
        assert api.move("run-1", "P1", "GATE").status_code == 200
        assert stuck_phases() == []


def test_a_paused_runs_phases_do_not_look_stuck(hung_phase, api):
    with clock.frozen_at(hung_phase):
        assert api.post("/runs/run-1/control", {"action": "pause", "reason": "lunch"}).status_code == 200
    assert stuck_phases(now=hung_phase + 60 * MINUTE) == []


def test_the_run_page_and_the_run_picker_show_the_evidence(hung_phase, client):
    with clock.frozen_at(hung_phase + 20 * MINUTE):
        page = client.get("/dashboard/runs/run-1/").content.decode()
        dashboard = client.get("/dashboard/", {"run": "run-1"}).content.decode()
    assert "Looks stuck" in page and "quiet for 20m 00s" in page and "gpt-4o-mini" in page
    assert "run-1 — PHASE_EXECUTION — looks stuck" in dashboard
    assert 'data-stuck-phase="P1"' in dashboard


def test_a_hung_phase_is_alerted_once_however_often_the_sweep_runs(hung_phase):
    for minutes in (16, 17, 30):
        with clock.frozen_at(hung_phase + minutes * MINUTE):
            raise_due_alerts()
    [alert] = Alert.objects.filter(kind=Alert.Kind.PHASE_STUCK)
    assert (alert.subject, alert.threshold, alert.window_start) == ("run-1 P1", 15, hung_phase)
    assert "looks stuck in EXECUTING" in alert.message and "gpt-4o-mini" in alert.message
