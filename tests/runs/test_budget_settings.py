"""A run's dollar budget in the start payload and the admin, and its limits with their forecasts on the run page."""

import datetime as dt
from decimal import Decimal

import pytest

from autopack_site import clock
from runs.models import Run
from tests.conftest import plan
from tests.runs.test_admin_run_edits import change_form
from usage.recording import record_usage

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def test_a_run_starts_with_the_dollar_budget_it_names(api):
    body = api.start(plan(budget_usd=12.5))
    assert body["budget_usd"] == 12.5
    assert Run.objects.get().budget_usd == Decimal("12.5000")


def test_a_run_without_a_dollar_budget_has_none(api):
    assert api.start(plan())["budget_usd"] is None


@pytest.mark.parametrize(
    "value, message",
    [(0, "must be at least 0.01"), ("5", "must be a number of dollars"), (True, "must be a number of dollars")],
)
def test_a_bad_dollar_budget_is_400(api, value, message):
    response = api.post("/runs/start", plan(budget_usd=value))
    assert response.status_code == 400
    assert response.json()["details"] == {"run.budget_usd": message}


def test_the_admin_sets_and_clears_the_dollar_budget(admin_client, api):
    api.start(plan())
    run = Run.objects.get()
    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", change_form(run, budget_usd="2.50"))
    assert response.status_code == 302
    assert Run.objects.get().budget_usd == Decimal("2.5000")
    run = Run.objects.get()
    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", change_form(run, budget_usd=""))
    assert response.status_code == 302 and Run.objects.get().budget_usd is None


def test_the_admin_refuses_a_dollar_budget_below_a_cent(admin_client, api):
    api.start(plan())
    run = Run.objects.get()
    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", change_form(run, budget_usd="0.001"))
    assert response.status_code == 200 and "must be between 0.01 and" in response.content.decode()
    assert Run.objects.get().budget_usd is None


def test_the_run_page_shows_what_is_left_of_each_limit_and_when_it_runs_out(api, client, models_config):
    with clock.frozen_at(T0):
        api.start(plan(token_cap=10_000, budget_usd=1, max_duration_minutes=120))
        api.move("run-1", "P1", "EXECUTING")
    with clock.frozen_at(T0 + dt.timedelta(minutes=10)):
        # gpt-4o: 2,000 input tokens at $2.50 per million is $0.005.
        record_usage(
            provider="openai",
            model="gpt-4o",
            role="builder",
            run_id="run-1",
            prompt_tokens=2000,
            completion_tokens=0,
            request_id="c1",
        )
        page = client.get("/dashboard/runs/run-1/").content.decode()
    budget = page[page.index('id="budget-title"') : page.index('id="phases-title"')]
    tokens = budget[budget.index('data-limit="token_cap"') : budget.index('data-limit="budget_usd"')]
    dollars = budget[budget.index('data-limit="budget_usd"') : budget.index('data-limit="max_duration_minutes"')]
    minutes = budget[budget.index('data-limit="max_duration_minutes"') :]
    # 2,000 tokens in 10 minutes: the other 8,000 take 40 more.
    assert "8K left" in tokens and "2K of 10K tokens" in tokens
    assert "Reached about Mar 2 10:50 UTC" in tokens
    # $0.005 in 10 minutes: $0.995 more take 1,990 minutes.
    assert "$1.00 left" in dollars and "$0.0050 spent of $1.00" in dollars
    assert "Reached about Mar 3 19:20 UTC" in dollars
    assert "110.0 min left" in minutes and "Reached at Mar 2 12:00 UTC" in minutes
