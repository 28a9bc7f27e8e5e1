"""A realistic demo run, built and advanced through the same services the API uses."""

import datetime as dt

from autopack_site import clock
from runs import services
from runs.models import Phase, Run
from runs.payloads import IssueSpec, PhaseReport, PhaseSpec, RunSpec, TierSpec
from runs.states import FINISHED_PHASE_STATES, PhaseState

DEMO_RUN_ID = "demo-run-001"

TIERS = [
    ("T1", "Foundation", "Project layout, settings and the data model"),
    ("T2", "Auth and API", "Login, tokens and the public JSON API"),
    ("T3", "Quality and release", "Tests, docs and the release checklist"),
]
# (phase_id, tier_id, name, category, complexity)
PHASES = [
    ("F1.1", "T1", "Scaffold project layout", "general", "low"),
    ("F1.2", "T1", "Settings from the environment", "general", "medium"),
    ("F1.3", "T1", "Data model and migrations", "schema_contract_change", "high"),
    ("F1.4", "T1", "Contributor guide", "docs", "low"),
    ("F2.1", "T2", "Password login", "security_auth_change", "high"),
    ("F2.2", "T2", "API tokens", "security_auth_change", "high"),
    ("F2.3", "T2", "Runs endpoint", "external_feature_reuse", "medium"),
    ("F2.4", "T2", "Rate limiting", "general", "medium"),
    ("F3.1", "T3", "Unit tests for the API", "tests", "medium"),
    ("F3.2", "T3", "End-to-end browser tests", "tests", "high"),
    ("F3.3", "T3", "User documentation", "docs", "low"),
    ("F3.4", "T3", "Release checklist", "general", "low"),
]


def load_demo_run(run_id: str = DEMO_RUN_ID) -> Run:
    """Create the demo run with four hours of history: tier 1 done, tier 2 under way."""
    start = clock.now() - dt.timedelta(hours=1, minutes=10)
    with clock.frozen_at(start):
        services.start_run(
            run=RunSpec(run_id=run_id, token_cap=2_000_000, max_phases=25),
            tiers=[TierSpec(tier_id=t, tier_index=i, name=n, description=d) for i, (t, n, d) in enumerate(TIERS)],
            phases=[
                PhaseSpec(phase_id=p, phase_index=i, tier_id=t, name=n, task_category=c, complexity=x)
                for i, (p, t, n, c, x) in enumerate(PHASES)
            ],
        )
    at = start

    def step(minutes: float, fn, **kwargs):
        nonlocal at
        at = at + dt.timedelta(minutes=minutes)
        with clock.frozen_at(at):
            fn(run_id=run_id, **kwargs)

    def build_and_audit(phase_id, minutes, tokens, *, revise=False, issues=()):
        step(1, services.update_phase_status, phase_id=phase_id, state=PhaseState.EXECUTING)
        attempts = 1
        if revise:
            step(minutes / 2, _builder, phase_id=phase_id, attempts=1, tokens=tokens // 2)
            step(
                1,
                _auditor,
                phase_id=phase_id,
                verdict="revise",
                attempts=1,
                tokens=tokens // 2,
                issues=issues,
            )
            attempts = 2
        step(minutes / 2, _builder, phase_id=phase_id, attempts=attempts, tokens=tokens)
        step(1, _auditor, phase_id=phase_id, verdict="approve", attempts=attempts, tokens=tokens, issues=issues)

    build_and_audit("F1.1", 6, 42_000)
    build_and_audit("F1.2", 8, 61_500, issues=[IssueSpec("settings-default-debug", "minor", "auditor", "config")])
    build_and_audit(
        "F1.3",
        12,
        118_000,
        revise=True,
        issues=[IssueSpec("migration-missing-index", "minor", "auditor", "schema", ["runs/models.py:40"])],
    )
    step(1, services.update_phase_status, phase_id="F1.4", state=PhaseState.SKIPPED)
    build_and_audit(
        "F2.1",
        14,
        203_000,
        revise=True,
        issues=[
            IssueSpec("password-compare-timing", "major", "auditor", "security", ["auth/views.py:88"]),
        ],
    )
    step(1, services.update_phase_status, phase_id="F2.2", state=PhaseState.EXECUTING)
    step(6, _builder, phase_id="F2.2", attempts=1, tokens=96_000)
    return Run.objects.get(run_id=run_id)


def _builder(*, run_id, phase_id, attempts, tokens):
    services.record_builder_result(
        run_id=run_id,
        phase_id=phase_id,
        status="success",
        report=PhaseReport(builder_attempts=attempts, tokens_used=tokens),
        issues=[],
    )


def _auditor(*, run_id, phase_id, verdict, attempts, tokens, issues):
    services.record_auditor_result(
        run_id=run_id,
        phase_id=phase_id,
        recommendation=verdict,
        report=PhaseReport(auditor_attempts=attempts, tokens_used=tokens + 9_000 * attempts),
        issues=list(issues),
    )


def advance_demo_run(run_id: str = DEMO_RUN_ID) -> Phase | None:
    """Take the run's next phase one step: start it, build it, or approve it. None when all are done."""
    phase = (
        Phase.objects.filter(run__run_id=run_id)
        .exclude(state__in=FINISHED_PHASE_STATES)
        .order_by("tier__tier_index", "phase_index")
        .first()
    )
    if phase is None:
        return None
    if phase.state == PhaseState.QUEUED:
        return services.update_phase_status(run_id=run_id, phase_id=phase.phase_id, state=PhaseState.EXECUTING)
    tokens = phase.reported_tokens + 40_000
    if phase.state == PhaseState.EXECUTING:
        return services.record_builder_result(
            run_id=run_id,
            phase_id=phase.phase_id,
            status="success",
            report=PhaseReport(builder_attempts=phase.builder_attempts + 1, tokens_used=tokens),
            issues=[],
        )
    return services.record_auditor_result(
        run_id=run_id,
        phase_id=phase.phase_id,
        recommendation="approve",
        report=PhaseReport(auditor_attempts=phase.auditor_attempts + 1, tokens_used=tokens),
        issues=[],
    )
