from django.urls import path

from usage import api, views

api_urlpatterns = [
    path("api/usage", api.ingest, name="api-usage-ingest"),
    path("dashboard/usage", api.usage, name="api-usage"),
]

dashboard_urlpatterns = [
    path("dashboard/usage/", views.usage_page, name="usage-page"),
    path("dashboard/usage/panel", views.usage_panel, name="usage-panel"),
    path("dashboard/usage/events.csv", views.usage_csv, name="usage-csv"),
]
