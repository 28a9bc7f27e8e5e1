"""LlmService against the local fake provider: a run's pause, cancel and budgets stop its calls before they start."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client

from autopack_site import clock
from routing.budgets import estimate_prompt_tokens, reservation_size, reserve_call, settle
from routing.config import get_config
from routing.llm_service import BudgetExhausted, LlmError, RunFinished, RunPaused
from runs.models import Run, RunReservation
from tests.conftest import Api, plan
from usage.models import LlmUsageEvent

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "hello"}]
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def call(service, run_id="run-1", **options):
    return service.complete("builder", None, "medium", MESSAGES, run_id=run_id, phase_id="P1", **options)


def control(api, action, **fields):
    response = api.post("/runs/run-1/control", {"action": action, **fields})
    assert response.status_code == 200, response.content
    return response


def test_a_paused_run_s_calls_stop_at_once_and_go_on_after_resume(service, provider, api):
    """A script calling in a loop: the call after the pause is refused, nothing sent, nothing recorded."""
    api.start(plan())
    done = []
    for n in range(6):
        if n == 2:
            control(api, "pause", reason="reading the diff", by="ana")
        if n == 4:
            control(api, "resume")
        try:
            done.append(call(service).request_id)
        except RunPaused as exc:
            assert str(exc) == "Run 'run-1' is paused by ana: reading the diff; resume it to go on"
            done.append("paused")
    assert [d == "paused" for d in done] == [False, False, True, True, False, False]
    assert len(provider.requests) == 4
    assert LlmUsageEvent.objects.filter(run_id="run-1").count() == 4
    assert not RunReservation.objects.exists()


def test_the_builder_call_reports_the_pause_as_its_error(service, provider, api):
    api.start(plan())
    control(api, "pause", reason="hold on", by="ana")
    result = service.execute_builder_phase({"name": "P", "complexity": "medium"}, {}, run_id="run-1", phase_id="P1")
    assert result.success is False and result.tokens_used == 0
    assert result.error == "Run 'run-1' is paused by ana: hold on; resume it to go on"
    assert provider.requests == []


def test_a_cancelled_run_refuses_every_call(service, provider, api):
    api.start(plan())
    control(api, "cancel", reason="wrong branch")
    with pytest.raises(RunFinished, match=r"finished \(DONE_FAILED_REQUIRES_HUMAN_REVIEW: cancelled: wrong branch\)"):
        call(service)
    assert provider.requests == [] and not LlmUsageEvent.objects.exists()


def test_a_call_after_the_token_cap_is_reached_is_refused_and_the_run_ends(service, provider, api):
    api.start(plan(token_cap=2000))
    call(service)
    call(service)
    with pytest.raises(BudgetExhausted) as refused:
        call(service)
    assert str(refused.value) == "token_cap reached: 3,000 tokens used of a cap of 2,000"
    run = Run.objects.get()
    assert run.state == "DONE_FAILED_BUDGET_EXHAUSTED"
    assert run.failure_reason == "token_cap reached: 3,000 tokens used of a cap of 2,000"
    assert len(provider.requests) == 2
    with pytest.raises(RunFinished, match="DONE_FAILED_BUDGET_EXHAUSTED: token_cap reached"):
        call(service)


def test_a_call_after_the_dollar_budget_is_spent_is_refused_and_the_run_ends(service, provider, api):
    """gpt-4o at $2.50 / $10 per million: 1,200 + 300 tokens cost $0.006 a call."""
    api.start(plan(budget_usd=0.01))
    assert Run.objects.get().budget_usd == Decimal("0.0100")
    call(service)
    call(service)
    with pytest.raises(BudgetExhausted, match=r"^budget_usd reached: \$0.0120 spent of a budget of \$0.01$"):
        call(service)
    run = Run.objects.get()
    assert run.state == "DONE_FAILED_BUDGET_EXHAUSTED"
    assert run.failure_reason == "budget_usd reached: $0.0120 spent of a budget of $0.01"
    assert len(provider.requests) == 2


def test_a_call_after_the_run_s_duration_limit_is_refused_and_the_run_ends(service, provider, api):
    with clock.frozen_at(T0):
        api.start(plan(max_duration_minutes=30))
        api.move("run-1", "P1", "EXECUTING")
    with clock.frozen_at(T0 + dt.timedelta(minutes=29, seconds=59)):
        call(service)
    with clock.frozen_at(T0 + dt.timedelta(minutes=30)), pytest.raises(BudgetExhausted) as refused:
        call(service)
    message = "max_duration_minutes reached: the run has been running 30.0 minutes of its 30"
    assert str(refused.value) == message
    run = Run.objects.get()
    assert (run.state, run.failure_reason, run.completed_at) == (
        "DONE_FAILED_BUDGET_EXHAUSTED",
        message,
        T0 + dt.timedelta(minutes=30),
    )
    assert len(provider.requests) == 1


def test_calls_in_flight_hold_the_rest_of_the_cap_without_ending_the_run(service, provider, api):
    api.start(plan(token_cap=5000))
    held = reserve_call(
        run_id="run-1", model=get_config().model("gpt-4o"), messages=MESSAGES, max_tokens=4994, timeout=60
    )
    assert held.tokens == 5000
    with pytest.raises(BudgetExhausted, match="0 tokens used and 5,000 held by calls in flight, of a cap of 5,000"):
        call(service)
    assert Run.objects.get().state == "RUN_CREATED" and provider.requests == []
    settle(held)
    assert call(service).tokens_used == 1500


def test_a_hold_whose_caller_died_stops_counting_when_it_expires(service, provider, api):
    api.start(plan(token_cap=5000))
    with clock.frozen_at(T0):
        reserve_call(run_id="run-1", model=None, messages=MESSAGES, max_tokens=4994, timeout=60)
    with clock.frozen_at(T0 + dt.timedelta(seconds=119)), pytest.raises(BudgetExhausted, match="held by calls"):
        call(service)
    with clock.frozen_at(T0 + dt.timedelta(seconds=121)):
        call(service)
    assert len(provider.requests) == 1


def test_the_real_usage_replaces_the_hold(service, provider, api):
    api.start(plan())
    call(service, max_tokens=500)
    assert provider.requests[0]["body"]["max_tokens"] == 500
    assert not RunReservation.objects.exists()
    assert Run.objects.get().tokens_used == 1500


def test_a_failed_call_releases_its_hold(service, provider, api):
    api.start(plan(token_cap=2000))
    provider.script("gpt-4o", (400, {"error": {"message": "context too long"}}, {}, 0))
    with pytest.raises(LlmError):
        call(service)
    assert not RunReservation.objects.exists() and Run.objects.get().tokens_used == 0
    call(service)


def test_a_hold_is_the_prompt_estimate_plus_max_tokens_or_the_catalog_s_output_limit(models_config):
    gpt_4o = get_config().model("gpt-4o")
    prompt = estimate_prompt_tokens(MESSAGES)
    assert prompt == 2 + 4
    assert reservation_size(gpt_4o, MESSAGES, 100) == (
        prompt + 100,
        gpt_4o.cost(prompt=prompt, completion=100, cached=0),
    )
    assert reservation_size(gpt_4o, MESSAGES, None)[0] == prompt + 16_384


def test_calls_outside_a_run_or_before_it_starts_hold_nothing(service, provider):
    call(service, run_id=None)
    call(service, run_id="planned-later")
    assert len(provider.requests) == 2 and not RunReservation.objects.exists()


def _drive_concurrently(service, threads: int, **options) -> list[str]:
    """`threads` executors calling one run in a loop until it is finished; returns how each call ended."""
    outcomes, barrier = [], threading.Barrier(threads)

    def executor():
        try:
            barrier.wait()
            while True:
                try:
                    call(service, **options)
                    outcomes.append("ok")
                except BudgetExhausted as exc:
                    if "would be reached" not in str(exc):
                        outcomes.append("ended")
                        return
                    outcomes.append("held")
                    time.sleep(0.01)
                except RunFinished:
                    outcomes.append("finished")
                    return
        finally:
            connections.close_all()

    workers = [threading.Thread(target=executor) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return outcomes


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_calls_overshoot_the_token_cap_by_less_than_one_hold(service, provider):
    Api(Client()).start(plan(token_cap=10_000))
    prompt, max_tokens = estimate_prompt_tokens(MESSAGES), 1000
    provider.default_usage = {"prompt_tokens": prompt, "completion_tokens": max_tokens}
    # Slow answers, so that all eight are in flight at once.
    provider.script("gpt-4o", *[(200, None, {}, 0.2)] * 40)
    outcomes = _drive_concurrently(service, 8, max_tokens=max_tokens)
    run = Run.objects.get()
    hold = prompt + max_tokens
    assert run.state == "DONE_FAILED_BUDGET_EXHAUSTED"
    assert run.failure_reason.startswith("token_cap reached: ")
    assert 10_000 <= run.tokens_used < 10_000 + hold
    assert outcomes.count("ok") == len(provider.requests) == LlmUsageEvent.objects.count() == run.tokens_used // hold
    assert not RunReservation.objects.exists()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_calls_overshoot_the_dollar_budget_by_less_than_one_hold(service, provider):
    Api(Client()).start(plan(budget_usd=0.05))
    prompt, max_tokens = estimate_prompt_tokens(MESSAGES), 1000
    provider.default_usage = {"prompt_tokens": prompt, "completion_tokens": max_tokens}
    provider.script("gpt-4o", *[(200, None, {}, 0.2)] * 40)
    outcomes = _drive_concurrently(service, 8, max_tokens=max_tokens)
    hold = reservation_size(get_config().model("gpt-4o"), MESSAGES, max_tokens)[1]
    spent = sum(e.cost_usd for e in LlmUsageEvent.objects.all())
    run = Run.objects.get()
    assert run.state == "DONE_FAILED_BUDGET_EXHAUSTED"
    assert run.failure_reason.startswith("budget_usd reached: ")
    assert Decimal("0.05") <= spent < Decimal("0.05") + hold
    assert outcomes.count("ok") == len(provider.requests)
