"""Alerts on the dashboard (a badge, a list panel, Acknowledge) and as JSON."""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from alerts.requests import AcknowledgeForm
from alerts.services import LIST_LIMIT, PANEL_LIMIT, acknowledge_alert, alerts_in_state, alerts_version
from autopack_site.access import actor
from autopack_site.api import api_view, dashboard_form
from autopack_site.contract import validate_body


def alerts_context(*, version: tuple[int, str] | None = None) -> dict:
    """What the alerts panel shows: the open alerts, newest first, and how many there are."""
    open_count, stamp = version or alerts_version()
    return {
        "open_alerts": list(alerts_in_state("open")[:PANEL_LIMIT]) if open_count else [],
        "open_alert_count": open_count,
        "alerts_version": stamp,
    }


@require_GET
def alerts_panel(request):
    """The open alerts again, or an empty 204 (one query) when none was raised, acknowledged or sent since `v`."""
    version = alerts_version()
    if request.GET.get("v") == version[1]:
        return HttpResponse(status=204)
    return render(request, "alerts/panel.html#alerts", alerts_context(version=version) | {"oob": True})


@dashboard_form(methods=("POST",))
def acknowledge_form(request, alert_id):
    """Acknowledge from the dashboard: the same service as the admin's action, answered as the panel."""
    body = validate_body(AcknowledgeForm, request.form, "Invalid acknowledgement")
    acknowledge_alert(alert_id=alert_id, by=actor(request, named=body.by, via="dashboard"))
    return render(request, "alerts/panel.html#alerts", alerts_context() | {"oob": True})


@api_view(methods=("GET",), write=False)
def alerts_json(request):
    """Alerts newest first: the open ones (default), the acknowledged ones, or all, with their delivery."""
    alerts = alerts_in_state(request.GET.get("state", "open"))
    open_count, _ = alerts_version()
    listed = [alert.as_json() for alert in alerts[: LIST_LIMIT + 1]]
    return JsonResponse({"open": open_count, "alerts": listed[:LIST_LIMIT], "truncated": len(listed) > LIST_LIMIT})
