"""The run API's request bodies, one model each; services take the checked values they hold.

The OpenAPI document's request schemas are generated from these models (autopack_site.openapi).
"""

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from autopack_site.contract import (
    EmptyBody,
    RequestModel,
    choice,
    dollars,
    drop_nulls,
    field_problems,
    identifier,
    integer,
    required_text,
    string_list,
    text,
    validate_body,
)
from autopack_site.limits import (
    ACTOR_CHARS,
    DESCRIPTION_CHARS,
    EVIDENCE_REF_CHARS,
    EVIDENCE_REFS,
    INT_MAX,
    KEY_CHARS,
    MAX_BUDGET_USD,
    MAX_ISSUES,
    MAX_ISSUES_PER_RESULT,
    MAX_PHASES,
    MAX_TIERS,
    MAX_TOKENS,
    NAME_CHARS,
    REASON_CHARS,
)
from autopack_site.strict_json import check_strings
from runs.states import (
    AUDITOR_RECOMMENDATIONS,
    BUILDER_STATUSES,
    COMPLEXITIES,
    DEFAULT_MAX_DURATION_MINUTES,
    DEFAULT_MAX_PHASES,
    DEFAULT_RUN_SCOPE,
    DEFAULT_SAFETY_PROFILE,
    DEFAULT_TOKEN_CAP,
    ISSUE_SEVERITIES,
    PHASE_ACTIONS,
    RUN_ACTIONS,
    RUN_SCOPES,
    SAFETY_PROFILES,
    PhaseState,
    RunState,
)

Attempts = integer(maximum=INT_MAX)
Tokens = integer(maximum=MAX_TOKENS)
IssueCount = integer(maximum=MAX_ISSUES)


class RunSpec(RequestModel):
    run_id: identifier(NAME_CHARS)
    safety_profile: choice(SAFETY_PROFILES) = DEFAULT_SAFETY_PROFILE
    run_scope: choice(RUN_SCOPES) = DEFAULT_RUN_SCOPE
    token_cap: integer(minimum=1, maximum=MAX_TOKENS) = DEFAULT_TOKEN_CAP
    max_phases: integer(minimum=1, maximum=MAX_PHASES) = DEFAULT_MAX_PHASES
    max_duration_minutes: integer(minimum=1, maximum=INT_MAX) = DEFAULT_MAX_DURATION_MINUTES
    # No dollar budget unless one is given.
    budget_usd: dollars(minimum="0.01", maximum=MAX_BUDGET_USD) | None = None


class TierSpec(RequestModel):
    tier_id: identifier(KEY_CHARS)
    tier_index: integer(maximum=INT_MAX)
    name: required_text()
    description: text(DESCRIPTION_CHARS) = ""


class PhaseSpec(RequestModel):
    phase_id: identifier(KEY_CHARS)
    phase_index: integer(maximum=INT_MAX)
    tier_id: required_text(KEY_CHARS)
    name: required_text()
    description: text(DESCRIPTION_CHARS) = ""
    task_category: text(KEY_CHARS) = ""
    # Blank when the executor names none; a complexity it names must be one of ours.
    complexity: choice(COMPLEXITIES) = ""
    builder_mode: text(KEY_CHARS) = ""


class StartRun(RequestModel):
    """POST /runs/start: the run, its tiers, and its phases (each naming one of the tiers)."""

    run: RunSpec
    tiers: Annotated[list[TierSpec], Field(max_length=MAX_TIERS)] = []
    phases: Annotated[list[PhaseSpec], Field(max_length=MAX_PHASES)] = []

    @field_validator("tiers")
    @classmethod
    def _unique_tier_ids(cls, tiers: list[TierSpec]) -> list[TierSpec]:
        problems, seen = {}, set()
        for i, tier in enumerate(tiers):
            if tier.tier_id in seen:
                problems[(i, "tier_id")] = (f"duplicate tier_id '{tier.tier_id}'", tier.tier_id)
            seen.add(tier.tier_id)
        if problems:
            raise field_problems("tiers", problems)
        return tiers

    @field_validator("phases")
    @classmethod
    def _phases_fit_the_run(cls, phases: list[PhaseSpec], info) -> list[PhaseSpec]:
        problems, seen = {}, set()
        # Only when the run and the tiers are valid themselves: else they are what is reported.
        tiers, run = info.data.get("tiers"), info.data.get("run")
        tier_ids = {t.tier_id for t in tiers} if tiers is not None else None
        for i, phase in enumerate(phases):
            if phase.phase_id in seen:
                problems[(i, "phase_id")] = (f"duplicate phase_id '{phase.phase_id}'", phase.phase_id)
            seen.add(phase.phase_id)
            if tier_ids is not None and phase.tier_id not in tier_ids:
                problems.setdefault((i, "tier_id"), (f"unknown tier '{phase.tier_id}'", phase.tier_id))
        if run is not None and len(phases) > run.max_phases:
            problems[()] = (f"{len(phases)} phases exceed the run's max_phases of {run.max_phases}", len(phases))
        if problems:
            raise field_problems("phases", problems)
        return phases


@dataclass
class IssueSpec:
    """An issue of a phase; one issue_key counts once per phase."""

    issue_key: required_text()
    severity: choice(ISSUE_SEVERITIES)
    source: text(KEY_CHARS) = ""
    category: text(KEY_CHARS) = ""
    evidence_refs: string_list(max_items=EVIDENCE_REFS, max_length=EVIDENCE_REF_CHARS) = Field(default_factory=list)

    # A dataclass so callers may pass fields in order; its field types are strict by themselves.
    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, ArgsKwargs):
            return ArgsKwargs(data.args, drop_nulls(data.kwargs or {}))
        return drop_nulls(data)


class PhaseReport(RequestModel):
    """Figures an executor reports with a phase's state; None means not reported."""

    builder_attempts: Attempts | None = None
    auditor_attempts: Attempts | None = None
    tokens_used: Tokens | None = None
    minor_issues_count: IssueCount | None = None
    major_issues_count: IssueCount | None = None


class PhaseStatusUpdate(PhaseReport):
    """POST …/phases/{phase_id}/update_status: the phase's new state, with the figures the executor has."""

    state: choice(PhaseState.values)


class RunStatusUpdate(RequestModel):
    """POST /runs/{run_id}/update_status: a run-level state the executor owns."""

    state: choice(RunState.values)
    failure_reason: text(DESCRIPTION_CHARS) | None = None


class RunControl(RequestModel):
    """POST /runs/{run_id}/control: pause, resume or cancel the run, saying why."""

    action: choice(RUN_ACTIONS)
    reason: text(REASON_CHARS) = ""
    # Who asks, when no login says so (a name for the run's history).
    by: text(ACTOR_CHARS) = ""


class PhaseControl(RequestModel):
    """POST /runs/{run_id}/phases/{phase_id}/control: retry a failed phase, skip one, or approve one at GATE."""

    action: choice(PHASE_ACTIONS)
    reason: text(REASON_CHARS) = ""
    by: text(ACTOR_CHARS) = ""


class ControlForm(RequestModel):
    """The dashboard's control dialog: a run action, or a phase action when it names a phase."""

    run_id: identifier(NAME_CHARS)
    phase_id: text(KEY_CHARS) = ""
    action: choice((*RUN_ACTIONS, *PHASE_ACTIONS))
    reason: text(REASON_CHARS) = ""


def _default_source(data: Any, key: str, source: str) -> Any:
    """An issue in an agent's result is that agent's unless it names another source."""
    if isinstance(data, dict) and isinstance(data.get(key), list):
        issues = [
            {**issue, "source": source} if isinstance(issue, dict) and issue.get("source") is None else issue
            for issue in data[key]
        ]
        return {**data, key: issues}
    return data


class BuilderResult(RequestModel):
    """POST …/builder_result. Patches are accepted but not applied: that is the executor's job."""

    status: choice(BUILDER_STATUSES)
    builder_attempts: Attempts | None = None
    tokens_used: Tokens | None = None
    suggested_issues: Annotated[list[IssueSpec], Field(max_length=MAX_ISSUES_PER_RESULT)] = []

    @model_validator(mode="before")
    @classmethod
    def _builder_is_the_source(cls, data: Any) -> Any:
        return _default_source(data, "suggested_issues", "builder")

    def report(self) -> PhaseReport:
        return PhaseReport(builder_attempts=self.builder_attempts, tokens_used=self.tokens_used)


class AuditorResult(RequestModel):
    """POST …/auditor_result: approve → COMPLETE, revise → EXECUTING, escalate → FAILED."""

    recommendation: choice(AUDITOR_RECOMMENDATIONS)
    auditor_attempts: Attempts | None = None
    tokens_used: Tokens | None = None
    issues_found: Annotated[list[IssueSpec], Field(max_length=MAX_ISSUES_PER_RESULT)] = []

    @model_validator(mode="before")
    @classmethod
    def _auditor_is_the_source(cls, data: Any) -> Any:
        return _default_source(data, "issues_found", "auditor")

    def report(self) -> PhaseReport:
        return PhaseReport(auditor_attempts=self.auditor_attempts, tokens_used=self.tokens_used)


def parse_start(body) -> StartRun:
    return validate_body(StartRun, body, "Invalid run")


def parse_phase_status(body) -> PhaseStatusUpdate:
    return validate_body(PhaseStatusUpdate, body, "Invalid phase status")


def parse_run_status(body) -> RunStatusUpdate:
    return validate_body(RunStatusUpdate, body, "Invalid run status")


def parse_run_control(body) -> RunControl:
    return validate_body(RunControl, body, "Invalid control")


def parse_phase_control(body) -> PhaseControl:
    return validate_body(PhaseControl, body, "Invalid control")


def parse_record_issue(body) -> IssueSpec:
    return validate_body(IssueSpec, body, "Invalid issue")


def parse_builder_result(body) -> BuilderResult:
    return validate_body(BuilderResult, body, "Invalid builder result")


def parse_auditor_result(body) -> AuditorResult:
    return validate_body(AuditorResult, body, "Invalid auditor result")


def parse_auditor_request(body) -> EmptyBody:
    return validate_body(EmptyBody, body, "Invalid request")


def issue_from_query(query) -> dict:
    """The original executor's record_issue call: the issue's fields as query parameters, no body."""
    body = {key: query.get(key) for key in ("issue_key", "severity", "source", "category")}
    body["evidence_refs"] = query.getlist("evidence_refs") or None
    check_strings(body)
    return body
