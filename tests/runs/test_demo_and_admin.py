import pytest
from django.core.management import call_command

from autopack_site.demo import advance_demo_run
from runs.models import Phase, PhaseIssue, Run, Tier

pytestmark = pytest.mark.django_db


def test_demo_loads_a_multi_tier_run_with_mixed_states_and_issues():
    call_command("demo")
    run = Run.objects.get(run_id="demo-run-001")
    assert run.state == "PHASE_EXECUTION"
    assert Tier.objects.filter(run=run).count() == 3
    assert Phase.objects.filter(run=run).count() == 12
    assert set(Phase.objects.values_list("state", flat=True)) >= {"COMPLETE", "SKIPPED", "GATE", "QUEUED"}
    assert set(Tier.objects.values_list("state", flat=True)) == {"COMPLETE", "IN_PROGRESS", "PENDING"}
    assert PhaseIssue.objects.filter(severity="major").exists()
    assert run.tokens_used == sum(Phase.objects.values_list("tokens_used", flat=True)) > 0


def test_demo_if_empty_leaves_a_database_with_runs_alone(api):
    api.start()
    call_command("demo", "--if-empty")
    assert not Run.objects.filter(run_id="demo-run-001").exists()


def test_advancing_the_demo_finishes_the_run_through_the_services():
    call_command("demo")
    steps = 0
    while advance_demo_run() is not None:
        steps += 1
        assert steps < 100
    run = Run.objects.get()
    assert run.state == "DONE_SUCCESS" and run.completed_at is not None
    assert not Phase.objects.exclude(state__in=["COMPLETE", "SKIPPED"]).exists()


def test_admin_shows_runs_with_tiers_and_phases_inline(admin_client, api):
    api.start()
    listing = admin_client.get("/admin/runs/run/")
    assert listing.status_code == 200 and "run-1" in listing.content.decode()
    run = Run.objects.get()
    page = admin_client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert "Phase 4" in page and "Tier T2" in page
    # States and figures are shown, not editable: they follow from the services.
    assert 'name="state"' not in page and 'name="phases-0-state"' not in page
    assert 'name="token_cap"' in page


def test_admin_edit_of_a_cap_keeps_the_run_consistent(admin_client, api):
    api.start()
    run = Run.objects.get()
    form = {
        "safety_profile": "normal",
        "run_scope": "multi_tier",
        "token_cap": "777",
        "max_phases": "25",
        "max_duration_minutes": "120",
        "failure_reason": "",
        "tiers-TOTAL_FORMS": "2",
        "tiers-INITIAL_FORMS": "2",
        "phases-TOTAL_FORMS": "4",
        "phases-INITIAL_FORMS": "4",
    }
    for i, tier in enumerate(Tier.objects.order_by("tier_index")):
        form |= {f"tiers-{i}-id": tier.pk, f"tiers-{i}-run": run.pk, f"tiers-{i}-name": tier.name}
    for i, phase in enumerate(Phase.objects.order_by("phase_index")):
        form |= {f"phases-{i}-id": phase.pk, f"phases-{i}-run": run.pk, f"phases-{i}-name": phase.name}
    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    version = run.version
    run.refresh_from_db()
    assert run.token_cap == 777 and run.state == "RUN_CREATED"
    # Raised like any write's, so an open dashboard's next poll shows the new cap.
    assert run.version == version + 1


def test_demo_if_empty_respects_autopack_demo_off(settings):
    settings.AUTOPACK_DEMO = False
    call_command("demo", "--if-empty")
    assert not Run.objects.exists()
