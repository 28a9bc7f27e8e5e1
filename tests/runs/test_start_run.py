import pytest

from runs.models import Phase, Run, Tier
from tests.conftest import QUICK_START, plan

pytestmark = pytest.mark.django_db


def test_quick_start_request_from_the_seed_works_verbatim(api):
    response = api.post("/runs/start", QUICK_START)
    assert response.status_code == 201
    run = response.json()
    assert run["id"] == "test_dashboard_001"
    assert run["state"] == "RUN_CREATED"
    assert run["token_cap"] == 5_000_000
    assert run["max_phases"] == 25 and run["max_duration_minutes"] == 120
    assert [t["tier_id"] for t in run["tiers"]] == ["T1"]
    assert run["tiers"][0]["phases"][0]["phase_id"] == "F1.1"
    assert run["phases"][0]["complexity"] == "medium"
    assert run["phases"][0]["state"] == "QUEUED"


def test_run_json_keeps_the_original_field_names(api):
    run = api.start()
    for key in (
        "id",
        "state",
        "safety_profile",
        "run_scope",
        "created_at",
        "started_at",
        "completed_at",
        "tokens_used",
        "minor_issues_count",
        "major_issues_count",
        "failure_reason",
        "tiers",
        "phases",
        "updated_at",
        "token_cap",
    ):
        assert key in run
    assert run["tokens_used"] == 0 and run["started_at"] is None


def test_get_run_returns_the_same_shape_as_start(api):
    started = api.start()
    fetched = api.get("/runs/run-1").json()
    assert fetched == started


def test_defaults_apply_when_run_fields_are_omitted(api):
    api.start({"run": {"run_id": "bare"}})
    run = Run.objects.get(run_id="bare")
    assert (run.safety_profile, run.run_scope, run.token_cap) == ("normal", "multi_tier", 5_000_000)


def test_tiers_and_phases_are_stored_with_their_order(api):
    api.start(plan(tiers=(("T1", 2), ("T2", 3))))
    assert list(Tier.objects.values_list("tier_id", flat=True)) == ["T1", "T2"]
    assert Phase.objects.filter(tier__tier_id="T2").count() == 3


def test_duplicate_run_id_is_409(api):
    api.start()
    response = api.post("/runs/start", plan())
    assert response.status_code == 409
    assert response.json()["details"] == {"run.run_id": "already exists"}
    assert Run.objects.count() == 1


def test_list_runs_newest_first_with_state_filter_and_pages(api):
    for n in range(3):
        api.start(plan(run_id=f"r{n}"))
    api.move("r1", "P1", "EXECUTING")
    listed = api.get("/runs/").json()
    assert [r["id"] for r in listed["runs"]] == ["r2", "r1", "r0"]
    assert [r["id"] for r in api.get("/runs/", state="PHASE_EXECUTION").json()["runs"]] == ["r1"]
    page = api.get("/runs/", page_size=2, page=2).json()
    assert (page["count"], page["num_pages"], [r["id"] for r in page["runs"]]) == (3, 2, ["r0"])


def test_unknown_state_filter_is_400(api):
    response = api.get("/runs/", state="BOGUS")
    assert response.status_code == 400
    assert "state" in response.json()["details"]


def test_unknown_run_is_404_json(api):
    response = api.get("/runs/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Run 'nope' not found", "details": {}}
