"""The run API: the original Autopack executor's calls, over JSON."""

from django.core.paginator import Paginator
from django.http import JsonResponse

from autopack_site.access import actor
from autopack_site.api import NO_BODY, api_view
from autopack_site.errors import InvalidInput, NotFound
from autopack_site.queries import query_int
from runs import payloads, services
from runs.models import Phase, Run
from runs.progress import run_progress
from runs.serializers import control_json, issue_json, pause_json, phase_json, run_json, run_summary_json
from runs.states import EXECUTOR, RunState

PAGE_SIZE_MAX = 200


def _run_or_404(run_id: str) -> Run:
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    return run


def _phase_response(phase: Phase, status: int = 200) -> JsonResponse:
    return JsonResponse(
        {
            "phase": phase_json(phase, run_id=phase.run.run_id, tier_id=phase.tier.tier_id),
            "run": run_summary_json(phase.run),
        },
        status=status,
    )


@api_view(methods=("POST",))
def start_run(request):
    body = payloads.parse_start(request.json)
    created = services.start_run(run=body.run, tiers=body.tiers, phases=body.phases, started_by=actor(request, via=""))
    return JsonResponse(run_json(created), status=201)


@api_view(methods=("GET",), write=False)
def list_runs(request):
    runs = Run.objects.order_by("-created_at", "-id")
    state = request.GET.get("state")
    if state:
        if state not in RunState.values:
            raise InvalidInput("Invalid filter", {"state": f"unknown run state '{state[:50]}'"})
        runs = runs.filter(state=state)
    page_size = query_int(request, "page_size", default=50, maximum=PAGE_SIZE_MAX)
    page_number = query_int(request, "page", default=1, maximum=10**9)
    paginator = Paginator(runs, page_size)
    page = paginator.get_page(page_number)
    return JsonResponse(
        {
            "count": paginator.count,
            "page": page.number,
            "page_size": page_size,
            "num_pages": paginator.num_pages,
            "runs": [run_summary_json(r) for r in page.object_list],
        }
    )


@api_view(methods=("GET",), write=False)
def run_detail(request, run_id):
    return JsonResponse(run_json(_run_or_404(run_id)))


@api_view(methods=("GET",), write=False)
def run_status(request, run_id):
    run = _run_or_404(run_id)
    return JsonResponse(
        {**run_progress(run).as_status(), **pause_json(run), "failure_reason": run.failure_reason or None}
    )


@api_view(methods=("GET", "POST"))
def run_control(request, run_id):
    """GET: the directive an executor that is not wired through LlmService polls. POST: pause, resume, cancel."""
    if request.method == "GET":
        return JsonResponse(control_json(_run_or_404(run_id)))
    body = payloads.parse_run_control(request.json)
    run = services.control_run(run_id=run_id, action=body.action, actor=actor(request, body.by), reason=body.reason)
    return JsonResponse(control_json(run))


@api_view(methods=("POST",))
def phase_control(request, run_id, phase_id):
    body = payloads.parse_phase_control(request.json)
    phase = services.control_phase(
        run_id=run_id, phase_id=phase_id, action=body.action, actor=actor(request, body.by), reason=body.reason
    )
    return _phase_response(phase)


@api_view(methods=("POST",))
def update_run_status(request, run_id):
    body = payloads.parse_run_status(request.json)
    run = services.update_run_status(run_id=run_id, state=body.state, failure_reason=body.failure_reason)
    return JsonResponse(run_summary_json(run))


@api_view(methods=("POST",))
def update_phase_status(request, run_id, phase_id):
    body = payloads.parse_phase_status(request.json)
    phase = services.update_phase_status(
        run_id=run_id, phase_id=phase_id, state=body.state, report=body, actor=actor(request, via=EXECUTOR)
    )
    return _phase_response(phase)


@api_view(methods=("POST",), body_optional=True)
def record_issue(request, run_id, phase_id):
    # The original executor sends these as query parameters with no body: the same model reads them.
    body = payloads.issue_from_query(request.GET) if request.json is NO_BODY else request.json
    issue = services.record_issue(run_id=run_id, phase_id=phase_id, issue=payloads.parse_record_issue(body))
    phase = issue.phase
    return JsonResponse(
        {
            "issue": issue_json(issue),
            "phase": phase_json(phase, run_id=phase.run.run_id, tier_id=phase.tier.tier_id),
            "run": run_summary_json(phase.run),
        },
        status=201 if issue.occurrences == 1 else 200,
    )


@api_view(methods=("POST",))
def builder_result(request, run_id, phase_id):
    body = payloads.parse_builder_result(request.json)
    phase = services.record_builder_result(
        run_id=run_id, phase_id=phase_id, status=body.status, report=body.report(), issues=body.suggested_issues
    )
    return _phase_response(phase)


@api_view(methods=("POST",), body_optional=True)
def auditor_request(request, run_id, phase_id):
    if request.json is not NO_BODY:
        payloads.parse_auditor_request(request.json)
    phase = services.request_audit(run_id=run_id, phase_id=phase_id)
    return _phase_response(phase)


@api_view(methods=("POST",))
def auditor_result(request, run_id, phase_id):
    body = payloads.parse_auditor_result(request.json)
    phase = services.record_auditor_result(
        run_id=run_id,
        phase_id=phase_id,
        recommendation=body.recommendation,
        report=body.report(),
        issues=body.issues_found,
    )
    return _phase_response(phase)
