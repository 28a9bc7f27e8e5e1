"""Site-wide views: the API's description, health and metrics, logging in and out, and error pages answering JSON
to the API."""

import sys

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRefresh
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from alerts.models import Alert
from autopack_site import clock, metrics
from autopack_site.access import actor, refuse_scrape
from autopack_site.api import NO_BODY, api_view, dashboard_form
from autopack_site.contract import EmptyBody, validate_body
from autopack_site.demo import remove_demo_data
from autopack_site.errors import NotFound
from autopack_site.openapi import openapi_spec
from autopack_site.responses import RETRY_AFTER_SECONDS, error_response
from autopack_site.timeline import run_timeline
from routing.models import ProviderCooldown
from runs.models import Run


@login_not_required
@require_GET
def openapi_document(request):
    return JsonResponse(openapi_spec())


@require_GET
def api_docs(request):
    spec = openapi_spec()
    operations = [
        {"path": p, "method": m.upper(), **op} for p, methods in spec["paths"].items() for m, op in methods.items()
    ]
    return render(request, "api_docs.html", {"spec": spec, "operations": operations})


@api_view(methods=("GET",), write=False)
def timeline_json(request, run_id):
    """The run's timeline, oldest first: state changes, controls, notes and LLM calls, each with who or what."""
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    timeline = run_timeline(run)
    return JsonResponse(
        {"run_id": run.run_id, "entries": [e.as_json() for e in timeline.entries], "truncated": timeline.truncated}
    )


@api_view(methods=("POST",), body_optional=True)
def remove_demo(request):
    """Delete all demo data."""
    if request.json is not NO_BODY:
        validate_body(EmptyBody, request.json, "Invalid request")
    removed = remove_demo_data(removed_by=actor(request, via="api"))
    return JsonResponse({"removed_runs": removed.runs, "removed_calls": removed.events})


@dashboard_form(methods=("POST",))
def remove_demo_form(request):
    """The dashboard's "Remove demo data": the same service; the page then reloads without it."""
    remove_demo_data(removed_by=actor(request, via="dashboard"))
    return HttpResponseClientRefresh()


# Django's login and logout, in the dashboard's style; the login page is open to all (login_not_required).
login = auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True)
logout = auth_views.LogoutView.as_view()


def locked_out(request, credentials=None, *args):
    """django-axes' answer to a login from a locked-out address or user name: when the lockout ends."""
    cool_off = get_cool_off(request)
    # The lockout runs from the latest failure, which is this attempt.
    ends_at = clock.now() + cool_off if cool_off else None
    return render(request, "locked_out.html", {"ends_at": ends_at, "cool_off": cool_off}, status=429)


@login_not_required
@require_GET
def healthz(request):
    try:
        # A kept connection that the server has ended (a restart, a stop) still looks open: check it as a
        # query's first use would, so a database that is away is reported, not hidden behind it.
        connection.close_if_health_check_failed()
        connection.ensure_connection()
    except OperationalError:
        metrics.count_database_error("OperationalError")
        return error_response(503, "Database unavailable")
    return JsonResponse({"status": "ok"})


class DatabaseState:
    """What `/metrics` reads from the database at each scrape: the same whichever process or server answers."""

    def collect(self):
        now = clock.now()
        try:
            cooldowns = list(ProviderCooldown.objects.values_list("provider", "until"))
            open_alerts = Alert.objects.filter(acknowledged_at__isnull=True).count()
        except (OperationalError, InterfaceError) as exc:
            # The scrape still answers with the counters, which say how many requests met the outage.
            metrics.count_database_error(type(exc).__name__)
            yield GaugeMetricFamily("autopack_database_up", "Whether this scrape could read the database.", value=0)
            return
        yield GaugeMetricFamily("autopack_database_up", "Whether this scrape could read the database.", value=1)
        left = GaugeMetricFamily(
            "autopack_provider_cooldown_seconds",
            "Seconds until a provider's cooldown ends (0 once it has), for each provider that ever cooled down.",
            labels=["provider"],
        )
        for provider, until in cooldowns:
            left.add_metric([provider], max((until - now).total_seconds(), 0))
        yield left
        cooling = sum(until > now for _, until in cooldowns)
        yield GaugeMetricFamily("autopack_providers_cooling_down", "Providers in a cooldown now.", value=cooling)
        yield GaugeMetricFamily("autopack_alerts_open", "Alerts raised and not acknowledged.", value=open_alerts)


def scrape_registry() -> CollectorRegistry:
    """This scrape's sources: every process's counters (or this process's alone), then the database's state.

    Built per scrape, as prometheus-client asks in multiprocess mode, so no metric is read twice.
    """
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(REGISTRY)
    registry.register(DatabaseState())
    return registry


@login_not_required
@require_GET
def metrics_page(request):
    """Prometheus' text format (or OpenMetrics, when the scraper asks for it) for operators."""
    refusal = refuse_scrape(request)
    if refusal is not None:
        return refusal
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(scrape_registry()), content_type=content_type)


def _wants_html(request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def bad_request(request, exception=None):
    if _wants_html(request):
        return HttpResponse("<h1>Bad request</h1>", status=400)
    return error_response(400, "Bad request")


def forbidden(request, exception=None):
    if _wants_html(request):
        return HttpResponse("<h1>Forbidden</h1>", status=403)
    return error_response(403, "Forbidden")


def not_found(request, exception=None):
    if _wants_html(request):
        return render(request, "404.html", status=404)
    return error_response(404, f"No route for {request.path[:200]}")


# No template, no database, no static file: this page must render while the database is away.
OUTAGE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{seconds}"><title>Reconnecting · Autopack Dashboard</title></head>
<body><h1>Reconnecting…</h1>
<p>The dashboard cannot reach its database right now. This page tries again every {seconds} seconds.</p>
</body></html>"""


def server_error(request):
    # The database going away is an outage to report, not a bug in the request.
    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError)):
        metrics.count_database_error(type(exc).__name__)
    if isinstance(exc, OperationalError):
        if _wants_html(request) and not request.headers.get("HX-Request"):
            response = HttpResponse(OUTAGE_PAGE.format(seconds=RETRY_AFTER_SECONDS), status=503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return error_response(503, "Database unavailable; try again shortly")
    return error_response(500, "Internal error")
