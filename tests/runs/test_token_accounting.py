"""Tokens an executor can trust: reported and metered figures side by side, the larger counting."""

import pytest

from runs.models import Phase, Run
from tests.conftest import plan
from usage import recording

pytestmark = pytest.mark.django_db


def _meter(run_id, phase_id, tokens):
    recording.record_usage(
        provider="openai",
        model="gpt-4o",
        role="builder",
        run_id=run_id,
        phase_id=phase_id,
        prompt_tokens=tokens,
        completion_tokens=0,
    )


def test_the_auditors_tokens_add_to_the_builders(api):
    api.start(plan())
    api.move("run-1", "P1", "EXECUTING")
    api.post("/runs/run-1/phases/P1/builder_result", {"status": "success", "tokens_used": 4000})
    api.post("/runs/run-1/phases/P1/auditor_result", {"recommendation": "revise", "tokens_used": 2500})
    assert Phase.objects.get(phase_id="P1").tokens_used == 6500
    api.post("/runs/run-1/phases/P1/builder_result", {"status": "success", "tokens_used": 1000})
    # A new Builder result sets the figure again, as the original's did.
    assert Phase.objects.get(phase_id="P1").tokens_used == 1000


def test_reported_and_metered_are_both_shown_and_the_larger_counts(api, models_config):
    api.start(plan())
    api.move("run-1", "P1", "EXECUTING", tokens_used=18000)
    _meter("run-1", "P1", 3000)
    _meter("run-1", "P1", 4300)
    status = api.status("run-1")
    assert (status["tokens_used"], status["tokens_reported"], status["tokens_metered"]) == (18000, 18000, 7300)
    phase = api.get("/runs/run-1").json()["phases"][0]
    assert (phase["tokens_used"], phase["tokens_reported"], phase["tokens_metered"]) == (18000, 18000, 7300)
    _meter("run-1", "P1", 20000)
    status = api.status("run-1")
    assert (status["tokens_used"], status["tokens_reported"], status["tokens_metered"]) == (27300, 18000, 27300)


def test_the_run_page_shows_both_figures(api, client, models_config):
    api.start(plan())
    api.move("run-1", "P1", "EXECUTING", tokens_used=18000)
    _meter("run-1", "P1", 7300)
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert "Reported by the executor 18K · metered from LLM calls 7.3K" in page
    assert "18K rep. / 7.3K met." in page


def test_token_utilization_is_not_capped_and_the_bar_says_how_far_over(api, client):
    api.start(plan(token_cap=1000))
    api.move("run-1", "P1", "EXECUTING", tokens_used=40000)
    assert api.status("run-1")["token_utilization"] == 4000.0
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert "39K tokens over the cap (4000.0% of it)" in page
    assert 'class="bar-fill level-exceeded" width="100.0"' in page
    assert Run.objects.get().tokens_used == 40000
