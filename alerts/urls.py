from django.urls import path

from alerts import views

api_urlpatterns = [
    path("dashboard/alerts", views.alerts_json, name="alerts-json"),
]

dashboard_urlpatterns = [
    path("dashboard/alerts/panel", views.alerts_panel, name="alerts-panel"),
    path("dashboard/forms/alerts/<int:alert_id>/acknowledge", views.acknowledge_form, name="alert-acknowledge-form"),
]
