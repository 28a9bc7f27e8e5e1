"""The dashboard's pages that show several apps at once: the dashboard, a run's page, the runs list.

The site is the one place that composes the apps: each panel's context comes from its own app.
"""

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from alerts.stuck import stuck_phases
from alerts.views import alerts_context
from autopack_site import clock
from autopack_site.queries import query_id
from autopack_site.timeline import run_timeline
from notes.views import helpers_context
from routing.budgets import run_limits
from routing.views import mapping_context
from runs.models import Phase, Run
from runs.progress import percent, phases_with_issues, run_progress
from runs.states import DONE_PHASE_STATES, TERMINAL_RUN_STATES, PhaseState, RunState
from usage.aggregation import period_or_default, run_usage_by_phase_and_model
from usage.models import RunUsageBucket
from usage.views import usage_context

RUN_PICKER_LIMIT = 200
RUNS_PER_PAGE = 50
# Besides each state: every run not finished yet, and every finished one.
RUN_STATE_GROUPS = ("active", "finished")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def runs_by_activity():
    """Runs with the most recent activity (any write to the run or its phases) first."""
    return Run.objects.order_by("-updated_at", "-id")


@require_GET
def dashboard(request):
    # One run more than the picker lists tells whether it lists them all, without counting.
    runs = list(runs_by_activity()[: RUN_PICKER_LIMIT + 1])
    more_runs = len(runs) > RUN_PICKER_LIMIT
    runs = runs[:RUN_PICKER_LIMIT]
    wanted = request.GET.get("run", "")
    run_id = query_id(request, "run")
    run = Run.objects.filter(run_id=run_id).first() if run_id else None
    if run is None and runs:
        run = runs[0]
    if run is not None and all(r.pk != run.pk for r in runs):
        runs.insert(0, run)
    stuck = stuck_phases(runs=runs)
    stuck_runs = {phase.run_id for phase in stuck}
    for r in runs:
        r.looks_stuck = r.run_id in stuck_runs
    period, notice = period_or_default(request.GET.get("period"))
    context = {
        **usage_context(period),
        **alerts_context(),
        "notice": notice,
        **mapping_context(run.run_id if run else None, request.GET.get("scope", "global")),
        **helpers_context(run),
        "runs": runs,
        "more_runs": more_runs,
        "picker_limit": RUN_PICKER_LIMIT,
        "run": run,
        "progress": run_progress(run) if run else None,
        "stuck": [phase for phase in stuck if run and phase.run_id == run.run_id],
        "stuck_minutes": settings.AUTOPACK_STUCK_MINUTES,
        "unknown_run": wanted if wanted and (run is None or run.run_id != wanted) else "",
    }
    return render(request, "dashboard/index.html", context)


@require_GET
def run_page(request, run_id):
    run = get_object_or_404(Run, run_id=run_id)
    phases = phases_with_issues(run)
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
        "limits": run_limits(run),
        "timeline": run_timeline(run),
        "stuck": stuck_phases(runs=[run]),
        "stuck_minutes": settings.AUTOPACK_STUCK_MINUTES,
    }
    return render(request, "runs/run_detail.html", context)


def _runs_filter(request) -> tuple[str, str]:
    """The state (or state group) and run id search asked for; unknown states and odd searches mean none."""
    state = request.GET.get("state", "")
    if state not in RunState.values and state not in RUN_STATE_GROUPS:
        state = ""
    search = request.GET.get("q", "").strip()
    if len(search) > 200 or "\x00" in search:
        search = ""
    return state, search


def _filtered_runs(state: str, search: str):
    runs = runs_by_activity()
    if state == "active":
        runs = runs.exclude(state__in=TERMINAL_RUN_STATES)
    elif state == "finished":
        runs = runs.filter(state__in=TERMINAL_RUN_STATES)
    elif state:
        runs = runs.filter(state=state)
    if search:
        runs = runs.filter(run_id__icontains=search)
    return runs


def _runs_version(runs) -> tuple[int, str]:
    """How many runs match, and a version of them that any write, start or deletion changes (one query).

    Every write raises its run's `version` and `updated_at`, so their sum and latest move with it.
    """
    seen = runs.aggregate(count=Count("id"), versions=Sum("version"), latest=Max("updated_at"))
    latest = (seen["latest"] - EPOCH) // dt.timedelta(microseconds=1) if seen["latest"] else 0
    return seen["count"], f"{seen['count']}.{seen['versions'] or 0}.{latest}"


def _page_number(request, pages: int) -> int:
    raw = request.GET.get("page", "1")
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 1
    return min(max(number, 1), pages)


def _percent_complete_by_run(runs: list[Run]) -> dict[int, float]:
    """Percent of each run's phases done, as the run's own progress counts them, in one query."""
    rows = (
        Phase.objects.filter(run__in=runs)
        .order_by()
        .values("run")
        .annotate(total=Count("id"), done=Count("id", filter=Q(state__in=DONE_PHASE_STATES)))
    )
    return {row["run"]: percent(row["done"], row["total"]) for row in rows}


def _cost_by_run(runs: list[Run]) -> dict[str, Decimal]:
    """Cost in USD of each run's LLM calls, from the hourly per-run totals, in one query."""
    rows = (
        RunUsageBucket.objects.filter(run_id__in=[r.run_id for r in runs])
        .order_by()
        .values("run_id")
        .annotate(cost=Sum("cost_usd"))
    )
    return {row["run_id"]: row["cost"] for row in rows}


def _runs_list_context(request, state: str, search: str, runs, count: int, version: str) -> dict:
    pages = max(1, -(-count // RUNS_PER_PAGE))
    page = _page_number(request, pages)
    start = (page - 1) * RUNS_PER_PAGE
    page_runs = list(runs[start : start + RUNS_PER_PAGE])
    if page_runs:
        percents, costs = _percent_complete_by_run(page_runs), _cost_by_run(page_runs)
        now = clock.now()
        for run in page_runs:
            run.percent_complete = percents.get(run.pk, 0.0)
            run.cost_usd = costs.get(run.run_id)
            end = run.completed_at or (run.updated_at if run.is_terminal else now)
            run.elapsed_seconds = max(0, int((end - run.started_at).total_seconds())) if run.started_at else None
    return {
        "page_runs": page_runs,
        "count": count,
        "version": version,
        "state": state,
        "search": search,
        "filter_query": urlencode({k: v for k, v in (("state", state), ("q", search)) if v}),
        "page": page,
        "pages": pages,
        "first_number": start + 1,
        "last_number": start + len(page_runs),
        "run_states": RunState.values,
    }


@require_GET
def runs_page(request):
    state, search = _runs_filter(request)
    runs = _filtered_runs(state, search)
    count, version = _runs_version(runs)
    return render(request, "runs/run_list.html", _runs_list_context(request, state, search, runs, count, version))


@require_GET
def runs_list_fragment(request):
    """The runs list again, or an empty 204 (one query) when the runs it shows have not changed since `v`."""
    state, search = _runs_filter(request)
    runs = _filtered_runs(state, search)
    count, version = _runs_version(runs)
    if request.GET.get("v") == version:
        return HttpResponse(status=204)
    context = _runs_list_context(request, state, search, runs, count, version)
    return render(request, "runs/run_list.html#list", context)
