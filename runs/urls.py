from django.urls import path

import autopack_site.converters  # noqa: F401 - registers <id:...>
from runs import api, views

api_urlpatterns = [
    path("runs/", api.list_runs, name="api-run-list"),
    path("runs/start", api.start_run, name="api-run-start"),
    path("runs/<id:run_id>", api.run_detail, name="api-run-detail"),
    path("runs/<id:run_id>/update_status", api.update_run_status, name="api-run-update-status"),
    path("runs/<id:run_id>/control", api.run_control, name="api-run-control"),
    path("runs/<id:run_id>/phases/<id:phase_id>/control", api.phase_control, name="api-phase-control"),
    path(
        "runs/<id:run_id>/phases/<id:phase_id>/update_status",
        api.update_phase_status,
        name="api-phase-update-status",
    ),
    path("runs/<id:run_id>/phases/<id:phase_id>/record_issue", api.record_issue, name="api-record-issue"),
    path(
        "runs/<id:run_id>/phases/<id:phase_id>/builder_result",
        api.builder_result,
        name="api-builder-result",
    ),
    path(
        "runs/<id:run_id>/phases/<id:phase_id>/auditor_request",
        api.auditor_request,
        name="api-auditor-request",
    ),
    path(
        "runs/<id:run_id>/phases/<id:phase_id>/auditor_result",
        api.auditor_result,
        name="api-auditor-result",
    ),
    path("dashboard/runs/<id:run_id>/status", api.run_status, name="api-run-status"),
]

dashboard_urlpatterns = [
    path("dashboard/runs/<id:run_id>/progress", views.run_progress_fragment, name="run-progress"),
    path("dashboard/forms/run-control", views.control_form, name="run-control-form"),
]
