import pytest

from runs.models import Phase, PhaseIssue, Run, Tier
from tests.conftest import plan

pytestmark = pytest.mark.django_db


def change_form(run: Run, *, tiers: dict | None = None, phases: dict | None = None, **fields) -> dict:
    """The run's change form as the admin page posts it, with `fields` and the rows' fields changed."""
    tiers, phases = tiers or {}, phases or {}
    form = {
        "safety_profile": run.safety_profile,
        "run_scope": run.run_scope,
        "token_cap": run.token_cap,
        "max_phases": run.max_phases,
        "max_duration_minutes": run.max_duration_minutes,
        "failure_reason": run.failure_reason,
        "tiers-TOTAL_FORMS": run.tiers.count(),
        "tiers-INITIAL_FORMS": run.tiers.count(),
        "phases-TOTAL_FORMS": run.phases.count(),
        "phases-INITIAL_FORMS": run.phases.count(),
        **fields,
    }
    for i, tier in enumerate(Tier.objects.filter(run=run).order_by("tier_index")):
        row = {"id": tier.pk, "run": run.pk, "name": tier.name, "description": tier.description}
        form |= {f"tiers-{i}-{name}": value for name, value in (row | tiers.get(tier.tier_id, {})).items()}
    for i, phase in enumerate(Phase.objects.filter(run=run).order_by("phase_index")):
        row = {
            "id": phase.pk,
            "run": run.pk,
            "name": phase.name,
            "task_category": phase.task_category,
            "complexity": phase.complexity,
            "builder_mode": phase.builder_mode,
        }
        form |= {f"phases-{i}-{name}": value for name, value in (row | phases.get(phase.phase_id, {})).items()}
    return form


def save(admin_client, run: Run, **changes):
    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", change_form(run, **changes))
    assert response.status_code == 302, response.content.decode()[:3000]


def poll(client, run_id: str, version: int):
    return client.get(f"/dashboard/runs/{run_id}/progress", {"v": version, "rows": 1})


def test_a_cap_edited_in_the_admin_reaches_the_next_poll(admin_client, api):
    api.start()
    run = Run.objects.get()
    assert poll(admin_client, "run-1", run.version).status_code == 204

    save(admin_client, run, token_cap=777_777)

    response = poll(admin_client, "run-1", run.version)
    assert response.status_code == 200 and "0 of 777777 tokens" in response.content.decode()
    fresh = Run.objects.get()
    assert (fresh.token_cap, fresh.version) == (777_777, run.version + 1)
    assert poll(admin_client, "run-1", fresh.version).status_code == 204


def test_names_category_and_complexity_edited_in_the_admin_reach_the_next_poll(admin_client, api):
    api.start()
    run = Run.objects.get()

    save(
        admin_client,
        run,
        tiers={"T2": {"name": "Hardening"}},
        phases={"P3": {"name": "Rotate the keys", "task_category": "security_auth_change", "complexity": "high"}},
    )

    page = poll(admin_client, "run-1", run.version).content.decode()
    assert "Hardening" in page and "Rotate the keys" in page and "security_auth_change" in page
    # Only the changed rows carry the new version, so the row poll sends only them.
    fresh = Run.objects.get()
    assert list(Tier.objects.filter(version=fresh.version).values_list("tier_id", flat=True)) == ["T2"]
    assert list(Phase.objects.filter(version=fresh.version).values_list("phase_id", flat=True)) == ["P3"]
    assert 'data-text="p3 rotate the keys' in page and 'data-text="p1 ' not in page
    assert Phase.objects.get(phase_id="P3").complexity == "high"


def test_an_admin_save_keeps_figures_an_executor_wrote_since_the_form_was_read(admin_client, api):
    api.start()
    run = Run.objects.get()
    form = change_form(run, token_cap=900_000)
    assert api.move("run-1", "P1", "EXECUTING", tokens_used=1234).status_code == 200

    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", form)

    assert response.status_code == 302
    fresh = Run.objects.get()
    assert (fresh.token_cap, fresh.tokens_used, fresh.state) == (900_000, 1234, "PHASE_EXECUTION")
    assert Phase.objects.get(phase_id="P1").state == "EXECUTING"


def test_an_admin_save_without_changes_keeps_the_version(admin_client, api):
    api.start()
    run = Run.objects.get()
    save(admin_client, run)
    assert Run.objects.get().version == run.version


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"token_cap": 0}, "must be between 1 and"),
        ({"max_phases": 3}, "may not be below the run&#x27;s 4 phases"),
        ({"max_duration_minutes": 0}, "must be between 1 and"),
    ],
)
def test_settings_the_service_refuses_come_back_on_the_form(admin_client, api, fields, message):
    api.start()
    run = Run.objects.get()
    response = admin_client.post(f"/admin/runs/run/{run.pk}/change/", change_form(run, **fields))
    assert response.status_code == 200 and message in response.content.decode()
    assert Run.objects.get().version == run.version


def test_deleting_an_issue_in_the_admin_brings_the_counts_down(admin_client, api):
    api.start(plan(tiers=(("T1", 2),)))
    for key, severity in (("leak", "major"), ("typo", "minor"), ("slow", "minor")):
        issue = {"issue_key": key, "severity": severity}
        assert api.post("/runs/run-1/phases/P1/record_issue", issue).status_code == 201
    version = Run.objects.get().version
    leak = PhaseIssue.objects.get(issue_key="leak")

    response = admin_client.post(f"/admin/runs/phaseissue/{leak.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    for row in (Phase.objects.get(phase_id="P1"), Tier.objects.get(), Run.objects.get()):
        assert (row.major_issues_count, row.minor_issues_count) == (0, 2)
    assert Run.objects.get().version > version
    assert poll(admin_client, "run-1", version).status_code == 200


def test_deleting_issues_in_bulk_in_the_admin_brings_every_count_down(admin_client, api):
    api.start()
    for phase_id in ("P1", "P3"):
        issue = {"issue_key": "leak", "severity": "major"}
        assert api.post(f"/runs/run-1/phases/{phase_id}/record_issue", issue).status_code == 201

    response = admin_client.post(
        "/admin/runs/phaseissue/",
        {
            "action": "delete_selected",
            "_selected_action": list(PhaseIssue.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )

    assert response.status_code == 302 and not PhaseIssue.objects.exists()
    assert Run.objects.get().major_issues_count == 0
    assert set(Tier.objects.values_list("major_issues_count", flat=True)) == {0}
