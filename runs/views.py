"""The run page's live fragment (what changed since the version the page last saw) and its controls."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from autopack_site.access import actor
from autopack_site.api import dashboard_form
from autopack_site.contract import validate_body
from runs import services
from runs.models import Run
from runs.payloads import ControlForm
from runs.progress import phases_with_issues, run_progress


def _version(raw: str | None) -> int:
    raw = raw or "0"
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0


def _changes_since(request, run: Run, since: int, rows: bool):
    """The summary plus, with `rows`, the tiers and phases changed since version `since`."""
    changed_phases = phases_with_issues(run, version__gt=since) if rows else []
    progress = run_progress(run)
    context = {
        "run": run,
        "progress": progress,
        "rows": int(rows),
        "changed_phases": changed_phases,
        "changed_tiers": [t for t in progress.tiers if t.version > since],
        "current_phase_pk": progress.current_phase.pk if progress.current_phase else None,
    }
    return render(request, "runs/run_detail.html#poll", context)


@require_GET
def run_progress_fragment(request, run_id):
    """What changed since version `v`: nothing (204), or the summary plus the changed rows.

    A finished run's fragment has no polling trigger and comes as 286, so polling stops.
    """
    since = _version(request.GET.get("v"))
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        return HttpResponseStopPolling()
    if run.version == since:
        return HttpResponse(status=204)
    response = _changes_since(request, run, since, rows=request.GET.get("rows") == "1")
    if run.is_terminal:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@dashboard_form(methods=("POST",))
def control_form(request):
    """A control confirmed in the page's dialog: the services the JSON API calls, answered as the page's
    next poll would be (the summary, and the rows changed since the version the page showed)."""
    body = validate_body(ControlForm, request.form, "Invalid control")
    who = actor(request, via="dashboard")
    if body.phase_id:
        services.control_phase(
            run_id=body.run_id, phase_id=body.phase_id, action=body.action, actor=who, reason=body.reason
        )
    else:
        services.control_run(run_id=body.run_id, action=body.action, actor=who, reason=body.reason)
    run = Run.objects.get(run_id=body.run_id)
    return _changes_since(request, run, _version(request.form.get("v")), rows=request.form.get("rows") == "1")
