import json

import pytest

from routing.models import ModelOverride, OverrideChange
from routing.quotas import forget_cached_states
from tests.conftest import plan
from tests.usage.conftest import event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "Origin": "http://testserver"}


def cell(cells, role, category, complexity):
    return next(c for c in cells if (c["role"], c["category"], c["complexity"]) == (role, category, complexity))


def test_models_is_the_originals_list_of_mappings_with_our_figures_beside(client, routing):
    rows = client.get("/dashboard/models").json()
    assert isinstance(rows, list)
    assert len(rows) == 2 * 3 * 3  # roles × (docs, security_auth_change, general) × complexities
    docs = cell(rows, "builder", "docs", "high")
    assert list(docs)[:5] == ["role", "category", "complexity", "model", "scope"]
    assert (docs["model"], docs["scope"]) == ("gpt-4o-mini", "global")
    assert (docs["baseline_model"], docs["effective_model"], docs["source"]) == ("gpt-4o-mini", "gpt-4o-mini", "yaml")
    assert docs["reasons"] == ["baseline gpt-4o-mini from category_models.docs.builder_model_override"]
    assert docs["warnings"] == [] and docs["run_id"] is None


def test_models_rows_name_a_run_override_with_scope_run(api, routing):
    api.start(plan())
    api.post("/dashboard/models/override", {"scope": "run", "run_id": "run-1", "role": "builder", "model": "o3"})
    row = cell(api.get("/dashboard/models", run_id="run-1").json(), "builder", "docs", "low")
    assert (row["model"], row["scope"], row["source"], row["run_id"]) == ("o3", "run", "run override", "run-1")
    row = cell(api.get("/dashboard/models").json(), "builder", "docs", "low")
    assert (row["model"], row["scope"], row["source"]) == ("gpt-4o-mini", "global", "yaml")


def test_models_matrix_view_is_the_panels_shape(client, routing):
    body = client.get("/dashboard/models", {"view": "matrix"}).json()
    assert body["run_id"] is None and len(body["cells"]) == 18
    assert cell(body["cells"], "auditor", "general", "low")["effective_model"] == "gpt-4o-mini"


def test_models_refuses_an_unknown_view(client, routing):
    response = client.get("/dashboard/models", {"view": "table"})
    assert response.status_code == 400 and "view" in response.json()["details"]


def test_models_shows_quota_redirects_and_refusals(client, routing):
    record_usage_events([event(prompt_tokens=900)], atomic_batch=True)
    record_usage_events([event(provider="anthropic", model="claude-opus-4-1", prompt_tokens=1000)], atomic_batch=True)
    forget_cached_states()
    cells = client.get("/dashboard/models").json()
    general = cell(cells, "builder", "general", "medium")
    assert (general["model"], general["effective_model"], general["redirected"]) == ("gpt-4o", "gemini-2.5-flash", True)
    critical = cell(cells, "auditor", "security_auth_change", "low")
    assert critical["effective_model"] is None and "weekly cap" in critical["error"]


def test_override_over_json_is_stored_logged_and_returned(api, routing):
    api.start(plan())
    body = {
        "scope": "run",
        "run_id": "run-1",
        "role": "builder",
        "category": "docs",
        "complexity": "low",
        "model": "o3",
    }
    response = api.post("/dashboard/models/override", body)
    assert response.status_code == 200
    answer = response.json()
    original = {"role": "builder", "category": "docs", "complexity": "low", "model": "o3", "scope": "run"}
    assert answer["message"] == "Run model mapping updated" and original.items() <= answer.items()
    assert (answer["effective_model"], answer["source"], answer["run_id"]) == ("o3", "run override", "run-1")
    assert ModelOverride.objects.get().run.run_id == "run-1"
    change = OverrideChange.objects.get()
    assert (change.action, change.new_model, change.via) == ("set", "o3", "api")
    rows = api.get("/dashboard/models", run_id="run-1").json()
    assert cell(rows, "builder", "docs", "low")["effective_model"] == "o3"
    assert cell(api.get("/dashboard/models").json(), "builder", "docs", "low")["effective_model"] == "gpt-4o-mini"


def test_a_global_override_answers_like_the_original(api, routing):
    body = {"scope": "global", "role": "builder", "category": "tests", "complexity": "medium", "model": "gpt-4o-mini"}
    answer = api.post("/dashboard/models/override", body).json()
    assert {k: answer[k] for k in ("message", *body)} == {"message": "Global model mapping updated", **body}


def test_an_override_for_a_category_the_file_does_not_name_still_answers_its_keys(api, routing):
    body = {"role": "builder", "category": "migrations", "complexity": "low", "model": "o3"}
    answer = api.post("/dashboard/models/override", body).json()
    assert answer == {"message": "Global model mapping updated", "scope": "global", **body, "run_id": None}


def test_delete_removes_the_override_and_logs_it(api, routing):
    keys = {"role": "auditor", "category": "general", "complexity": "high"}
    api.post("/dashboard/models/override", {**keys, "model": "gpt-5"})
    response = api.client.delete("/dashboard/models/override", json.dumps(keys), content_type="application/json")
    answer = response.json()
    assert response.status_code == 200 and answer["source"] == "yaml"
    assert answer["message"] == "Global model mapping reset"
    assert (answer["model"], answer["scope"]) == ("claude-opus-4-1", "global")
    assert not ModelOverride.objects.exists()
    assert list(OverrideChange.objects.values_list("action", flat=True)) == ["reset", "set"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"role": "builder", "model": "no-such-model"}, 400, "model"),
        ({"role": "planner", "model": "o3"}, 400, "role"),
        ({"role": "builder", "complexity": "extreme", "model": "o3"}, 400, "complexity"),
        ({"role": "builder", "scope": "run", "model": "o3"}, 400, "run_id"),
        ({"role": "builder", "scope": "team", "model": "o3"}, 400, "scope"),
        ({"role": "builder"}, 400, "model"),
        ({"role": "builder", "model": 5}, 400, "model"),
        ({"role": "builder", "scope": "run", "run_id": "ghost", "model": "o3"}, 404, None),
    ],
)
def test_bad_overrides_are_refused_and_nothing_is_stored(api, routing, body, status, field):
    response = api.post("/dashboard/models/override", body)
    assert response.status_code == status
    if field:
        assert field in response.json()["details"]
    assert not ModelOverride.objects.exists() and not OverrideChange.objects.exists()


def test_unknown_run_for_models_is_404(client, routing):
    assert client.get("/dashboard/models", {"run_id": "ghost"}).status_code == 404


def test_a_broken_config_is_503_with_its_problems(client, models_config):
    models_config({"complexity_models": {"low": {"builder": "gpt-99"}}})
    response = client.get("/dashboard/models")
    assert response.status_code == 503
    assert "complexity_models.low.builder" in response.json()["details"]


# --- the dashboard's own writes ----------------------------------------------------------------


def post_form(client, data, **headers):
    return client.post("/dashboard/forms/override", data, headers=headers)


def refused(response) -> bool:
    """A refused dashboard change: nothing swapped, the reason put beside the control."""
    return response.status_code == 200 and response.get("X-Refused") == "true" and response["HX-Reswap"] == "none"


def test_a_dashboard_change_with_htmx_and_our_origin_saves_and_returns_the_cell(client, routing):
    response = post_form(client, {"role": "builder", "category": "docs", "complexity": "low", "model": "o3"}, **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="cell-builder-docs-low"' in page and '<span class="cell-model">o3</span>' in page
    assert ">global override</span>" in page and "Reset to YAML" in page
    assert "<select" not in page  # the change is made: the cell shows its model again
    assert OverrideChange.objects.get().via == "dashboard"


def test_a_cross_site_form_post_is_refused(client, routing):
    form = {"role": "builder", "category": "docs", "complexity": "low", "model": "o3"}
    assert refused(post_form(client, form))  # no HX-Request: not from our pages
    assert refused(post_form(client, form, **{"HX-Request": "true", "Origin": "http://evil.example"}))
    assert refused(post_form(client, form, **{"HX-Request": "true"}))
    assert refused(post_form(client, form, **{"HX-Request": "true", "Origin": "null"}))
    # The JSON endpoint takes no form either.
    assert client.post("/dashboard/models/override", form, headers=HTMX).status_code == 415
    assert not ModelOverride.objects.exists()


def test_a_dashboard_change_from_another_machine_needs_a_staff_login(client, admin_client, routing):
    form = {"role": "builder", "category": "docs", "complexity": "low", "model": "o3"}
    remote = client.post("/dashboard/forms/override", form, headers=HTMX, REMOTE_ADDR="10.0.0.8")
    assert refused(remote) and "need a loopback client or a staff login" in remote.content.decode()
    staff = admin_client.post("/dashboard/forms/override", form, headers=HTMX, REMOTE_ADDR="10.0.0.8")
    assert staff.status_code == 200
    assert OverrideChange.objects.get().changed_by == "admin"


def test_a_dashboard_reset_uses_query_parameters_like_htmx(client, routing):
    post_form(client, {"role": "builder", "category": "docs", "complexity": "low", "model": "o3"}, **HTMX)
    response = client.delete(
        "/dashboard/forms/override?scope=global&role=builder&category=docs&complexity=low", headers=HTMX
    )
    assert response.status_code == 200 and not ModelOverride.objects.exists()


def test_a_refused_dashboard_change_says_why_in_its_cell(client, routing):
    response = post_form(
        client,
        {"role": "builder", "category": "docs", "complexity": "low", "model": "gpt-99"},
        **HTMX,
        **{"HX-Target": "cell-builder-docs-low"},
    )
    assert refused(response)
    page = response.content.decode()
    assert page.startswith('<span id="cell-builder-docs-low-error" hx-swap-oob="innerHTML">')
    assert "unknown model &#x27;gpt-99&#x27;" in page
    assert not ModelOverride.objects.exists()


# --- the panel -----------------------------------------------------------------------------------


def test_panel_shows_a_broken_config_instead_of_the_matrix(client, models_config):
    models_config({"provider_quotas": {"openai": {"soft_limit_ratio": 7}}})
    page = client.get("/dashboard/models/panel").content.decode()
    assert "routing refuses calls until they are fixed" in page
    assert "<code>provider_quotas.openai.soft_limit_ratio</code>" in page


# --- the admin -------------------------------------------------------------------------------------


def test_admin_adds_an_override_through_the_service_and_logs_it(admin_client, routing):
    response = admin_client.post(
        "/admin/routing/modeloverride/add/",
        {"scope": "global", "role": "auditor", "category": "tests", "complexity": "", "model": "o3", "note": "cheaper"},
    )
    assert response.status_code == 302
    change = OverrideChange.objects.get()
    assert (change.via, change.changed_by, change.new_model) == ("admin", "admin", "o3")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"scope": "global", "role": "auditor", "model": "gpt-99"}, "Unknown model"),
        ({"scope": "run", "role": "auditor", "model": "o3"}, "A run override needs its run."),
    ],
)
def test_admin_shows_validation_errors_on_the_form(admin_client, routing, form, message):
    response = admin_client.post("/admin/routing/modeloverride/add/", {"category": "", "complexity": "", **form})
    assert response.status_code == 200 and message in response.content.decode()
    assert not ModelOverride.objects.exists()


def test_admin_refuses_a_duplicate_global_override(admin_client, routing):
    form = {"scope": "global", "role": "auditor", "category": "tests", "complexity": "", "model": "o3"}
    admin_client.post("/admin/routing/modeloverride/add/", form)
    again = admin_client.post("/admin/routing/modeloverride/add/", {**form, "model": "gpt-5"})
    assert again.status_code == 200 and "already exists" in again.content.decode()
    assert ModelOverride.objects.get().model == "o3"


def test_the_database_refuses_duplicate_global_overrides_whatever_the_null_run(routing):
    from django.db import IntegrityError, transaction

    from autopack_site import clock

    now = clock.now()
    ModelOverride.objects.create(scope="global", role="builder", model="o3", created_at=now, updated_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelOverride.objects.create(scope="global", role="builder", model="o4-mini", created_at=now, updated_at=now)


def test_changes_while_the_config_is_broken_are_503_and_change_nothing(api, routing, models_config):
    keys = {"role": "builder", "category": "docs", "complexity": "low"}
    api.post("/dashboard/models/override", {**keys, "model": "o3"})
    models_config({"models": "not a mapping"})
    assert api.post("/dashboard/models/override", {**keys, "model": "o4-mini"}).status_code == 503
    response = api.client.delete("/dashboard/models/override", json.dumps(keys), content_type="application/json")
    assert response.status_code == 503 and "models" in response.json()["details"]
    assert ModelOverride.objects.get().model == "o3" and OverrideChange.objects.count() == 1


def test_a_global_override_with_a_run_id_is_refused(api, routing):
    api.start(plan())
    body = {"scope": "global", "run_id": "run-1", "role": "builder", "model": "o3"}
    assert "run_id" in api.post("/dashboard/models/override", body).json()["details"]


def test_with_an_api_key_set_dashboard_changes_need_a_staff_login(client, admin_client, routing, settings):
    settings.AUTOPACK_API_KEY = "secret"
    form = {"role": "builder", "category": "docs", "complexity": "low", "model": "o3"}
    assert refused(post_form(client, form, **HTMX))
    assert not refused(post_form(client, form, **HTMX, **{"X-API-Key": "secret"}))
    assert not refused(admin_client.post("/dashboard/forms/override", form, headers=HTMX))


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/models?run_id=%00",
        "/dashboard/?run=%00",
        "/dashboard/notes/list?run=%00",
        "/dashboard/models/panel?run=%00",
        "/dashboard/models/status?run=a%00b",
        "/dashboard/runs/x/progress?v=" + "9" * 5000,
        "/runs/?page=" + "1" * 5000,
        "/runs/?page_size=" + "1" * 5000,
    ],
)
def test_odd_query_strings_are_never_a_500(client, routing, url):
    assert client.get(url).status_code in (200, 204, 286, 400, 404)


def test_admin_picks_a_run_by_its_run_id(admin_client, api, routing):
    api.start(plan(run_id="nightly-42"))
    add_page = admin_client.get("/admin/routing/modeloverride/add/").content.decode()
    assert "admin-autocomplete" in add_page and "vRawIdAdminField" not in add_page
    found = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "routing", "model_name": "modeloverride", "field_name": "run", "term": "nightly"},
    ).json()
    assert [r["text"] for r in found["results"]] == ["nightly-42"]
    run_pk = found["results"][0]["id"]
    form = {"scope": "run", "run": run_pk, "role": "builder", "category": "", "complexity": "", "model": "o3"}
    assert admin_client.post("/admin/routing/modeloverride/add/", form).status_code == 302
    override = ModelOverride.objects.get()
    change_page = admin_client.get(f"/admin/routing/modeloverride/{override.pk}/change/").content.decode()
    assert f'<option value="{run_pk}" selected>nightly-42</option>' in change_page
