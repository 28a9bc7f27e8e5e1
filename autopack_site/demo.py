"""A realistic demo run, built and advanced through the same services the API uses.

Everything it loads is demo data: the runs carry `is_demo` and their calls are recorded as demo
usage, which never counts in a quota, a routing decision, a forecast or a provider's total, and
`remove_demo_data` deletes all of it.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from autopack_site import clock
from routing.calls import decision_record
from routing.config import ConfigError
from routing.router import RoutingError, select
from routing.services import reset_run_overrides
from runs import services
from runs.models import Phase, Run, UnclaimedUsage
from runs.payloads import IssueSpec, PhaseReport, PhaseSpec, RunSpec, TierSpec
from runs.states import FINISHED_PHASE_STATES, PhaseState
from usage.models import LlmUsageEvent, RunUsageBucket
from usage.recording import record_usage_events

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


def load_demo_usage_history(days: int = 30) -> None:
    """A month of earlier calls (planning agents, other runs' builders) so the usage chart has a shape."""
    now = clock.now()
    for day in range(days, 0, -1):
        for n, (model, role, tokens) in enumerate(
            (
                ("gpt-4o", "builder", 180_000),
                ("claude-sonnet-4-5", "builder", 240_000),
                ("gpt-4o-mini", "agent:planner", 60_000),
            )
        ):
            at = now - dt.timedelta(days=day, hours=n * 3)
            volume = tokens * (1 + (day * 7 + n) % 5) // 3
            prompt = volume * 4 // 5
            _record_demo(
                provider="anthropic" if model.startswith("claude") else "openai",
                model=model,
                role=role,
                prompt_tokens=prompt,
                completion_tokens=volume - prompt,
                request_id=f"demo-history:{day}:{n}",
                created_at=at.isoformat(),
            )


def load_demo_run(run_id: str = DEMO_RUN_ID) -> Run:
    """Create the demo run with an hour of history: tier 1 done, tier 2 under way."""
    start = clock.now() - dt.timedelta(hours=1, minutes=10)
    with clock.frozen_at(start):
        services.start_run(
            is_demo=True,
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


def _record_demo(**fields) -> None:
    record_usage_events([fields], atomic_batch=True, demo=True)


def _record_call(*, run_id, phase_id, role, tokens, usual_model):
    """The LLM call behind a demo step, routed and recorded as LlmService would, as demo usage."""
    phase = Phase.objects.get(run__run_id=run_id, phase_id=phase_id)
    try:
        decision = select(role, phase.task_category, phase.complexity, run=run_id)
        model, provider, record = decision.model, decision.provider, decision_record(decision, [])
    except (RoutingError, ConfigError) as exc:
        # Routing refuses this call now (a quota, a broken models.yaml): the demo still shows a call.
        model, provider = usual_model, "anthropic" if usual_model.startswith("claude") else "openai"
        record = {"asked_for": model, "used": model, "source": "demo", "reasons": [str(exc)], "warnings": []}
    prompt = tokens * 3 // 4
    _record_demo(
        provider=provider,
        model=model,
        role=role,
        run_id=run_id,
        phase_id=phase_id,
        prompt_tokens=prompt,
        completion_tokens=tokens - prompt,
        cached_prompt_tokens=prompt // 3,
        latency_ms=4_000 + tokens // 20,
        request_id=f"{run_id}:{phase_id}:{role}:{clock.now().isoformat()}",
        created_at=clock.now().isoformat(),
        decision=record,
    )


def _builder(*, run_id, phase_id, attempts, tokens):
    _record_call(run_id=run_id, phase_id=phase_id, role="builder", tokens=tokens // 2, usual_model="claude-sonnet-4-5")
    return services.record_builder_result(
        run_id=run_id,
        phase_id=phase_id,
        status="success",
        report=PhaseReport(builder_attempts=attempts, tokens_used=tokens),
        issues=[],
    )


def _auditor(*, run_id, phase_id, verdict, attempts, tokens, issues):
    _record_call(run_id=run_id, phase_id=phase_id, role="auditor", tokens=tokens // 3, usual_model="gpt-4o")
    return services.record_auditor_result(
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
        return _builder(run_id=run_id, phase_id=phase.phase_id, attempts=phase.builder_attempts + 1, tokens=tokens)
    return _auditor(
        run_id=run_id,
        phase_id=phase.phase_id,
        verdict="approve",
        attempts=phase.auditor_attempts + 1,
        tokens=tokens,
        issues=(),
    )


@dataclass
class DemoRemoval:
    runs: int
    events: int


def has_demo_data() -> bool:
    return Run.objects.filter(is_demo=True).exists() or LlmUsageEvent.objects.filter(is_demo=True).exists()


@transaction.atomic
def remove_demo_data(*, removed_by: str = "demo --remove") -> DemoRemoval:
    """Delete every demo run and every demo call, with their run totals; real figures stay exactly as they were.

    Demo calls were never in the provider buckets, so no real total changes. Run overrides of demo runs
    are reset through the routing service, so the override log says so.
    """
    run_ids = list(Run.objects.select_for_update().filter(is_demo=True).values_list("run_id", flat=True))
    reset_run_overrides(run_ids=run_ids, changed_by=removed_by, via="demo")
    events, _ = LlmUsageEvent.objects.filter(is_demo=True).delete()
    RunUsageBucket.objects.filter(run_id__in=run_ids).delete()
    UnclaimedUsage.objects.filter(run_id__in=run_ids).delete()
    Run.objects.filter(run_id__in=run_ids).delete()
    return DemoRemoval(runs=len(run_ids), events=events)
