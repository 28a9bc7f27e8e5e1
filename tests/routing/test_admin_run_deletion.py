import pytest

from notes.models import HumanNote
from routing.models import ModelOverride, OverrideChange
from routing.services import set_override
from runs.models import Phase, Run
from tests.conftest import plan

pytestmark = pytest.mark.django_db


def override(run_id: str, role: str, complexity: str, model: str = "gpt-4o"):
    set_override(
        scope="run", run_id=run_id, role=role, category="", complexity=complexity, model=model, via="dashboard"
    )


def test_deleting_a_run_in_the_admin_logs_a_reset_per_override(admin_client, api, routing):
    api.start()
    override("run-1", "builder", "medium")
    override("run-1", "auditor", "high", model="o3")
    pk = Run.objects.get().pk

    response = admin_client.post(f"/admin/runs/run/{pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Run.objects.exists() and not Phase.objects.exists() and not ModelOverride.objects.exists()
    resets = OverrideChange.objects.filter(action="reset").order_by("role")
    assert [(c.run_id, c.role, c.old_model, c.changed_by, c.via) for c in resets] == [
        ("run-1", "auditor", "o3", "admin", "admin"),
        ("run-1", "builder", "gpt-4o", "admin", "admin"),
    ]


def test_deleting_runs_in_bulk_in_the_admin_logs_each_runs_overrides(admin_client, api, routing):
    for run_id in ("run-1", "run-2", "run-3"):
        api.start(plan(run_id=run_id))
    override("run-1", "builder", "medium")
    override("run-2", "builder", "low")
    set_override(scope="global", role="builder", category="", complexity="medium", model="o3", via="dashboard")
    chosen = list(Run.objects.filter(run_id__in=["run-1", "run-2"]).values_list("pk", flat=True))

    response = admin_client.post(
        "/admin/runs/run/", {"action": "delete_selected", "_selected_action": chosen, "post": "yes"}
    )

    assert response.status_code == 302
    assert list(Run.objects.values_list("run_id", flat=True)) == ["run-3"]
    resets = OverrideChange.objects.filter(action="reset")
    assert sorted((c.run_id, c.changed_by) for c in resets) == [("run-1", "admin"), ("run-2", "admin")]
    # The global override is no run's: it stays.
    assert ModelOverride.objects.get().scope == "global"


def test_the_admin_asks_before_deleting_a_run_and_lists_its_overrides(admin_client, api, routing):
    api.start()
    override("run-1", "builder", "medium")
    page = admin_client.get(f"/admin/runs/run/{Run.objects.get().pk}/delete/").content.decode()
    assert "Are you sure" in page and "run run-1: builder any/medium" in page
    assert not OverrideChange.objects.filter(action="reset").exists()


def test_deleting_a_run_with_notes_rewrites_the_notes_file(
    admin_client, api, routing, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "human_notes.md")
    api.start()
    api.start(plan(run_id="run-2"))
    for run_id, text in (("run-1", "Keep the old API."), ("run-2", "Use the session store.")):
        assert api.post("/dashboard/human-notes", {"note": text, "run_id": run_id}).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/runs/run/{Run.objects.get(run_id='run-1').pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(HumanNote.objects.values_list("text", flat=True)) == ["Use the session store."]
    text = (tmp_path / "human_notes.md").read_text()
    assert "Use the session store." in text and "Keep the old API." not in text
