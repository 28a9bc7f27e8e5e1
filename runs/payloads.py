"""Parsing of the run API's request bodies into checked values; services take these values."""

from dataclasses import dataclass, field

from autopack_site.api import NO_BODY
from autopack_site.errors import InvalidInput
from autopack_site.fields import INT_MAX, MAX_ISSUES, MAX_PHASES, MAX_TOKENS, Fields
from autopack_site.strict_json import check_strings
from runs.states import COMPLEXITIES, ISSUE_SEVERITIES, RUN_SCOPES, SAFETY_PROFILES, PhaseState, RunState


@dataclass
class RunSpec:
    run_id: str
    safety_profile: str = "normal"
    run_scope: str = "multi_tier"
    token_cap: int = 5_000_000
    max_phases: int = 25
    max_duration_minutes: int = 120


@dataclass
class TierSpec:
    tier_id: str
    tier_index: int
    name: str
    description: str = ""


@dataclass
class PhaseSpec:
    phase_id: str
    phase_index: int
    tier_id: str
    name: str
    description: str = ""
    task_category: str = ""
    complexity: str = ""
    builder_mode: str = ""


@dataclass
class IssueSpec:
    issue_key: str
    severity: str
    source: str = ""
    category: str = ""
    evidence_refs: list[str] = field(default_factory=list)


def parse_start(body) -> tuple[RunSpec, list[TierSpec], list[PhaseSpec]]:
    root = Fields(body)
    run_fields = root.obj("run", required=True)
    run = None
    if run_fields is not None:
        run = RunSpec(
            run_id=run_fields.string("run_id", required=True, identifier=True),
            safety_profile=run_fields.string("safety_profile", default="normal", choices=SAFETY_PROFILES),
            run_scope=run_fields.string("run_scope", default="multi_tier", choices=RUN_SCOPES),
            token_cap=run_fields.integer("token_cap", default=5_000_000, minimum=1, maximum=MAX_TOKENS),
            max_phases=run_fields.integer("max_phases", default=25, minimum=1, maximum=MAX_PHASES),
            max_duration_minutes=run_fields.integer("max_duration_minutes", default=120, minimum=1, maximum=INT_MAX),
        )
    tiers = [
        TierSpec(
            tier_id=t.string("tier_id", required=True, max_length=100, identifier=True),
            tier_index=t.integer("tier_index", required=True, default=0, maximum=INT_MAX),
            name=t.string("name", required=True),
            description=t.string("description", max_length=10_000),
        )
        for t in root.objects("tiers")
    ]
    phases = [
        PhaseSpec(
            phase_id=p.string("phase_id", required=True, max_length=100, identifier=True),
            phase_index=p.integer("phase_index", required=True, default=0, maximum=INT_MAX),
            tier_id=p.string("tier_id", required=True, max_length=100),
            name=p.string("name", required=True),
            description=p.string("description", max_length=10_000),
            task_category=p.string("task_category", max_length=100),
            complexity=p.string("complexity", choices=COMPLEXITIES),
            builder_mode=p.string("builder_mode", max_length=100),
        )
        for p in root.objects("phases")
    ]
    errors = root.errors
    seen_tiers: dict[str, int] = {}
    for i, tier in enumerate(tiers):
        if tier.tier_id in seen_tiers:
            errors.setdefault(f"tiers[{i}].tier_id", f"duplicate tier_id '{tier.tier_id}'")
        seen_tiers.setdefault(tier.tier_id, i)
    seen_phases: set[str] = set()
    for i, phase in enumerate(phases):
        if phase.phase_id in seen_phases:
            errors.setdefault(f"phases[{i}].phase_id", f"duplicate phase_id '{phase.phase_id}'")
        seen_phases.add(phase.phase_id)
        if phase.tier_id and phase.tier_id not in seen_tiers:
            errors.setdefault(f"phases[{i}].tier_id", f"unknown tier '{phase.tier_id}'")
    if run is not None and run_fields is not None and not run_fields.errors and len(phases) > run.max_phases:
        errors["phases"] = f"{len(phases)} phases exceed the run's max_phases of {run.max_phases}"
    root.raise_if_invalid("Invalid run")
    return run, tiers, phases


def parse_issue(f: Fields, *, default_source: str = "") -> IssueSpec:
    return IssueSpec(
        issue_key=f.string("issue_key", required=True),
        severity=f.string("severity", required=True, choices=ISSUE_SEVERITIES),
        source=f.string("source", default=default_source, max_length=100),
        category=f.string("category", max_length=100),
        evidence_refs=f.string_list("evidence_refs"),
    )


@dataclass
class PhaseReport:
    """Figures an executor reports with a phase's state; None means not reported."""

    builder_attempts: int | None = None
    auditor_attempts: int | None = None
    tokens_used: int | None = None
    minor_issues_count: int | None = None
    major_issues_count: int | None = None


def _report(f: Fields, *keys: str) -> PhaseReport:
    report = PhaseReport()
    limits = {"tokens_used": MAX_TOKENS, "minor_issues_count": MAX_ISSUES, "major_issues_count": MAX_ISSUES}
    for key in keys:
        setattr(report, key, f.integer(key, maximum=limits.get(key, INT_MAX)))
    return report


def parse_phase_status(body) -> tuple[str, PhaseReport]:
    f = Fields(body)
    state = f.string("state", required=True, choices=PhaseState.values)
    report = _report(
        f, "builder_attempts", "auditor_attempts", "tokens_used", "minor_issues_count", "major_issues_count"
    )
    f.raise_if_invalid("Invalid phase status")
    return state, report


def parse_run_status(body) -> tuple[str, str | None]:
    f = Fields(body)
    state = f.string("state", required=True, choices=RunState.values)
    reason = f.string("failure_reason", default=None, max_length=10_000) if f.has("failure_reason") else None
    f.raise_if_invalid("Invalid run status")
    return state, reason


def parse_record_issue(body) -> IssueSpec:
    f = Fields(body)
    issue = parse_issue(f)
    f.raise_if_invalid("Invalid issue")
    return issue


BUILDER_STATUSES = ("success", "failed", "needs_review")
AUDITOR_RECOMMENDATIONS = ("approve", "revise", "escalate")


def parse_builder_result(body) -> tuple[str, PhaseReport, list[IssueSpec]]:
    f = Fields(body)
    status = f.string("status", required=True, choices=BUILDER_STATUSES)
    report = _report(f, "builder_attempts", "tokens_used")
    issues = [parse_issue(i, default_source="builder") for i in f.objects("suggested_issues", max_items=1000)]
    f.raise_if_invalid("Invalid builder result")
    return status, report, issues


def parse_auditor_result(body) -> tuple[str, PhaseReport, list[IssueSpec]]:
    f = Fields(body)
    recommendation = f.string("recommendation", required=True, choices=AUDITOR_RECOMMENDATIONS)
    report = _report(f, "auditor_attempts", "tokens_used")
    issues = [parse_issue(i, default_source="auditor") for i in f.objects("issues_found", max_items=1000)]
    f.raise_if_invalid("Invalid auditor result")
    return recommendation, report, issues


def require_object_or_empty(body) -> None:
    if body is not NO_BODY and not isinstance(body, dict):
        raise InvalidInput("Invalid request", {"body": "must be a JSON object"})


def issue_from_query(query) -> dict:
    """The original executor's record_issue call: the issue's fields as query parameters, no body."""
    body = {key: query.get(key) for key in ("issue_key", "severity", "source", "category")}
    body["evidence_refs"] = query.getlist("evidence_refs") or None
    check_strings(body)
    return body
