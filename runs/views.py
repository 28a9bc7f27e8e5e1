"""The run page's live fragment: what changed since the version the page last saw."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from autopack_site.prepared import PreparedQuery
from runs.models import Run
from runs.progress import phases_with_issues, run_progress

# What every poll reads first: the run's version alone.
RUN_VERSION = PreparedQuery(lambda run_id: Run.objects.filter(run_id=run_id).values_list("version"), arity=1)


@require_GET
def run_progress_fragment(request, run_id):
    """What changed since version `v`: nothing (204), or the summary plus the changed rows.

    A finished run's fragment has no polling trigger and comes as 286, so polling stops.
    """
    since = request.GET.get("v", "0")
    since = int(since) if since.isascii() and since.isdigit() and len(since) <= 18 else 0
    current = RUN_VERSION.first_row(run_id)
    if current is None:
        return HttpResponseStopPolling()
    if current[0] == since:
        return HttpResponse(status=204)
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        return HttpResponseStopPolling()
    rows = request.GET.get("rows") == "1"
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
    response = render(request, "runs/run_detail.html#poll", context)
    if run.is_terminal:
        response.status_code = HttpResponseStopPolling.status_code
    return response
