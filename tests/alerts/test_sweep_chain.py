import datetime as dt

import pytest
from django_tasks_db.models import DBTaskResult

from alerts.models import SweepSchedule
from alerts.sweep import start_sweeping, sweep_alerts
from autopack_site import clock
from tests.alerts.conftest import DATABASE
from tests.usage.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = DATABASE
    settings.AUTOPACK_SWEEP_SECONDS = 60


def queued_sweeps() -> list:
    sweeps = DBTaskResult.objects.filter(task_path="alerts.sweep.sweep_alerts", status="READY")
    return list(sweeps.order_by("run_after"))


def test_the_sweep_queues_the_next_a_minute_on_and_strays_stop(database_tasks, django_capture_on_commit_callbacks):
    with clock.frozen_at(NOW), django_capture_on_commit_callbacks(execute=True):
        assert start_sweeping() is True
        assert start_sweeping() is False
    [first] = queued_sweeps()
    assert first.args_kwargs["kwargs"] == {"due": NOW.isoformat()}
    with clock.frozen_at(NOW + dt.timedelta(seconds=1)), django_capture_on_commit_callbacks(execute=True):
        sweep_alerts.call(due=NOW.isoformat())
        # A second chain's sweep, due at another time, finds the schedule moved on and queues nothing.
        sweep_alerts.call(due=(NOW - dt.timedelta(minutes=3)).isoformat())
    following = NOW + dt.timedelta(seconds=61)
    assert SweepSchedule.objects.get().next_at == following
    assert [task.args_kwargs["kwargs"]["due"] for task in queued_sweeps()] == [NOW.isoformat(), following.isoformat()]
    assert queued_sweeps()[1].run_after == following


def test_a_chain_that_died_is_started_again(database_tasks, django_capture_on_commit_callbacks):
    with clock.frozen_at(NOW), django_capture_on_commit_callbacks(execute=True):
        start_sweeping()
    with clock.frozen_at(NOW + dt.timedelta(minutes=10)), django_capture_on_commit_callbacks(execute=True):
        assert start_sweeping() is True
    assert SweepSchedule.objects.get().next_at == NOW + dt.timedelta(minutes=10)
