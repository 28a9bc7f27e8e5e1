"""Usage recorded under a run_id before the run is started joins its totals when it starts."""

import threading

import pytest
from django.db import connections

from runs.models import Phase, Run, UnclaimedUsage
from tests.conftest import plan
from usage import recording


def _call(run_id, phase_id="", tokens=(1000, 111), request_id=None):
    recording.record_usage(
        provider="openai",
        model="gpt-4o",
        role="builder",
        run_id=run_id,
        phase_id=phase_id,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        request_id=request_id,
    )


@pytest.mark.django_db
def test_planning_calls_before_the_start_count_on_the_run(api, models_config):
    _call("run-1")
    _call("run-1", "P1", tokens=(5, 6))
    api.start(plan("run-1"))
    run = Run.objects.get()
    assert run.tokens_used == 1111 + 11
    assert run.usage_tokens_without_phase == 1111
    assert Phase.objects.get(phase_id="P1").tokens_used == 11
    assert not UnclaimedUsage.objects.exists()
    assert api.status("run-1")["tokens_used"] == 1122


@pytest.mark.django_db
def test_usage_after_the_start_is_added_as_before(api, models_config):
    _call("run-1")
    api.start(plan("run-1"))
    _call("run-1", "P2", tokens=(10, 10))
    assert Run.objects.get().tokens_used == 1111 + 20


@pytest.mark.django_db
def test_usage_for_another_run_waits_for_that_run(api, models_config):
    _call("run-2")
    api.start(plan("run-1"))
    assert Run.objects.get().tokens_used == 0
    assert UnclaimedUsage.objects.get().tokens == 1111


def _start_while_recording(api, run_id: str) -> None:
    barrier = threading.Barrier(2)

    def record():
        try:
            barrier.wait()
            for i in range(5):
                _call(run_id, tokens=(1, 1), request_id=f"{run_id}-{i}")
        finally:
            connections.close_all()

    thread = threading.Thread(target=record)
    thread.start()
    barrier.wait()
    api.start(plan(run_id))
    thread.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_only
def test_usage_racing_the_start_is_never_lost(api, models_config):
    """Events recorded while the run is being started end up on the run, whichever commits first."""
    for attempt in range(5):
        _start_while_recording(api, f"race-{attempt}")
        assert Run.objects.get(run_id=f"race-{attempt}").tokens_used == 10
    assert not UnclaimedUsage.objects.exists()
