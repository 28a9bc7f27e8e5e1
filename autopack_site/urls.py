from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

import autopack_site.converters  # noqa: F401 - registers <id:...>
from alerts import urls as alerts_urls
from autopack_site import gateway, pages, views
from notes import urls as notes_urls
from routing import urls as routing_urls
from runs import urls as runs_urls
from usage import urls as usage_urls

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/openapi.json", views.openapi_document, name="openapi"),
    path("docs", views.api_docs, name="api-docs"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_page, name="metrics"),
    path("v1/chat/completions", gateway.chat_completions, name="gateway-chat"),
    path("v1/responses", gateway.responses, name="gateway-responses"),
    path("v1/models", gateway.models, name="gateway-models"),
    # The original dashboard's health check.
    path("health", views.healthz, name="health"),
    path("dashboard/demo/remove", views.remove_demo, name="demo-remove"),
    path("runs/<id:run_id>/timeline", views.timeline_json, name="api-run-timeline"),
    path("dashboard/forms/remove-demo", views.remove_demo_form, name="demo-remove-form"),
    *runs_urls.api_urlpatterns,
    *usage_urls.api_urlpatterns,
    *routing_urls.api_urlpatterns,
    *notes_urls.api_urlpatterns,
    *alerts_urls.api_urlpatterns,
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("dashboard/runs/", pages.runs_page, name="runs-page"),
    path("dashboard/runs/list", pages.runs_list_fragment, name="runs-list"),
    path("dashboard/runs/<id:run_id>/", pages.run_page, name="run-page"),
    *runs_urls.dashboard_urlpatterns,
    *usage_urls.dashboard_urlpatterns,
    *routing_urls.dashboard_urlpatterns,
    *notes_urls.dashboard_urlpatterns,
    *alerts_urls.dashboard_urlpatterns,
]

handler400 = "autopack_site.views.bad_request"
handler403 = "autopack_site.views.forbidden"
handler404 = "autopack_site.views.not_found"
handler500 = "autopack_site.views.server_error"
