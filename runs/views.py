"""The dashboard's pages and the htmx fragment that keeps them live."""

from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from autopack_site.api import query_id
from notes.views import helpers_context
from routing.views import mapping_context
from runs.models import Phase, Run
from runs.progress import run_progress
from runs.states import TERMINAL_RUN_STATES, PhaseState
from usage.aggregation import period_or_default, run_usage_by_phase_and_model
from usage.views import usage_context

RUN_PICKER_LIMIT = 200


def runs_for_picker():
    """Active runs first, then finished ones, newest first within each."""
    finished = Case(When(state__in=TERMINAL_RUN_STATES, then=Value(1)), default=Value(0), output_field=IntegerField())
    return Run.objects.annotate(finished=finished).order_by("finished", "-created_at", "-id")[:RUN_PICKER_LIMIT]


@require_GET
def dashboard(request):
    runs = list(runs_for_picker())
    wanted = request.GET.get("run", "")
    run_id = query_id(request, "run")
    run = Run.objects.filter(run_id=run_id).first() if run_id else None
    if run is None and runs:
        run = runs[0]
    if run is not None and all(r.pk != run.pk for r in runs):
        runs.insert(0, run)
    period, notice = period_or_default(request.GET.get("period"))
    context = {
        **usage_context(period),
        "notice": notice,
        **mapping_context(run.run_id if run else None, request.GET.get("scope", "global")),
        **helpers_context(run),
        "runs": runs,
        "run": run,
        "progress": run_progress(run) if run else None,
        "unknown_run": wanted if wanted and (run is None or run.run_id != wanted) else "",
    }
    return render(request, "dashboard/index.html", context)


def _phases_of(run: Run, **filters) -> list[Phase]:
    return list(Phase.objects.filter(run=run, **filters).prefetch_related("issues").order_by("phase_index", "id"))


@require_GET
def run_page(request, run_id):
    run = get_object_or_404(Run, run_id=run_id)
    phases = _phases_of(run)
    progress = run_progress(run, phases=phases)
    for tier in progress.tiers:
        tier.phase_list = [p for p in phases if p.tier_id == tier.pk]
    context = {
        "run": run,
        "progress": progress,
        "tiers": progress.tiers,
        "rows": 1,
        "current_phase_pk": progress.current_phase.pk if progress.current_phase else None,
        "phase_states": PhaseState.values,
        "usage_rows": run_usage_by_phase_and_model(run.run_id),
    }
    return render(request, "runs/run_detail.html", context)


@require_GET
def run_progress_fragment(request, run_id):
    """What changed since version `v`: nothing (204), or the summary plus the changed rows.

    A finished run's fragment has no polling trigger and comes as 286, so polling stops.
    """
    since = request.GET.get("v", "0")
    since = int(since) if since.isascii() and since.isdigit() and len(since) <= 18 else 0
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        return HttpResponseStopPolling()
    if run.version == since:
        return HttpResponse(status=204)
    rows = request.GET.get("rows") == "1"
    changed_phases = _phases_of(run, version__gt=since) if rows else []
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
