from django.urls import path

from routing import views

api_urlpatterns = [
    path("dashboard/models", views.models_json, name="api-models"),
    path("dashboard/models/override", views.override, name="model-override"),
]

dashboard_urlpatterns = [
    path("dashboard/models/", views.mapping_page, name="mapping-page"),
    path("dashboard/models/panel", views.mapping_panel, name="mapping-panel"),
    path("dashboard/models/status", views.mapping_status, name="mapping-status"),
    path("dashboard/models/cell", views.mapping_cell, name="mapping-cell"),
    path("dashboard/forms/override", views.override_form, name="override-form"),
]
