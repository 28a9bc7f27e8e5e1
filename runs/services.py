"""Every change to runs, tiers and phases, each in one transaction.

Callers (the JSON API, the demo, the admin) go through these functions, which lock the run row,
apply the move, and keep derived figures and states right: a tier's state follows its phases,
tokens and issue counts of tiers and runs are sums of their phases', and a run finalises itself
when its last phase finishes.
"""

from collections import defaultdict
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum

from autopack_site import clock
from autopack_site.errors import Conflict, InvalidInput, NotFound
from autopack_site.limits import (
    DESCRIPTION_CHARS,
    INT_MAX,
    KEY_CHARS,
    MAX_BUDGET_USD,
    MAX_PHASES,
    MAX_TOKENS,
    NAME_CHARS,
)
from runs.models import Phase, PhaseIssue, Run, RunEvent, Tier, UnclaimedUsage
from runs.payloads import IssueSpec, PhaseReport, PhaseSpec, RunSpec, TierSpec
from runs.states import (
    COMPLEXITIES,
    DONE_PHASE_STATES,
    EXECUTOR,
    EXECUTOR_RUN_STATES,
    FINISHED_PHASE_STATES,
    FINISHED_TIER_STATES,
    PAUSE,
    PHASE_ACTIONS,
    REOPEN_PHASE_STATES,
    RESUME,
    RUN_ACTIONS,
    RUN_SCOPES,
    RUNNING_PHASE_STATES,
    SAFETY_PROFILES,
    SERVER,
    STATE_CHANGE,
    PhaseState,
    RunState,
    TierState,
)

# The first key of the advisory locks that serialise a run's start with usage naming it.
RUN_ID_LOCK = 7201
NOT_STARTED_RUN_STATES = frozenset({RunState.PLAN_BOOTSTRAP, RunState.RUN_CREATED, RunState.PHASE_QUEUEING})
BUILDER_STATUS_MOVES = {
    "success": PhaseState.GATE,
    "needs_review": PhaseState.GATE,
    "failed": PhaseState.FAILED,
}
AUDITOR_MOVES = {
    "approve": PhaseState.COMPLETE,
    "revise": PhaseState.EXECUTING,
    "escalate": PhaseState.FAILED,
}
# What `edit_run` may change, with the limits POST /runs/start applies to the same fields.
RUN_SETTING_RULES = {
    "safety_profile": {"choices": SAFETY_PROFILES},
    "run_scope": {"choices": RUN_SCOPES},
    "token_cap": {"minimum": 1, "maximum": MAX_TOKENS},
    "max_phases": {"minimum": 1, "maximum": MAX_PHASES},
    "max_duration_minutes": {"minimum": 1, "maximum": INT_MAX},
    "budget_usd": {"dollars": True},
    "failure_reason": {"max_length": DESCRIPTION_CHARS},
}
TIER_FIELD_RULES = {
    "name": {"required": True, "max_length": NAME_CHARS},
    "description": {"max_length": DESCRIPTION_CHARS},
}
PHASE_FIELD_RULES = {
    "name": {"required": True, "max_length": NAME_CHARS},
    "description": {"max_length": DESCRIPTION_CHARS},
    "task_category": {"max_length": KEY_CHARS},
    "complexity": {"choices": ("", *COMPLEXITIES)},
    "builder_mode": {"max_length": 100},
}


@transaction.atomic
def start_run(
    *, run: RunSpec, tiers: list[TierSpec], phases: list[PhaseSpec], is_demo: bool = False, started_by: str = ""
) -> Run:
    """Create a run with its tiers and phases, or raise Conflict when the run_id is taken.

    Usage already recorded under the run_id (planning calls made before the start) joins its totals.
    `started_by` names the key or person that started it; `is_demo` is for the demo loader only.
    """
    _lock_run_ids([run.run_id])
    if Run.objects.filter(run_id=run.run_id).exists():
        raise Conflict(f"Run '{run.run_id}' already exists", {"run.run_id": "already exists"})
    now = clock.now()
    try:
        # A savepoint: a concurrent start of the same run_id fails here, not the whole request.
        with transaction.atomic():
            created = Run.objects.create(
                run_id=run.run_id,
                safety_profile=run.safety_profile,
                run_scope=run.run_scope,
                token_cap=run.token_cap,
                max_phases=run.max_phases,
                max_duration_minutes=run.max_duration_minutes,
                budget_usd=run.budget_usd,
                is_demo=is_demo,
                started_by=started_by,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        raise Conflict(f"Run '{run.run_id}' already exists", {"run.run_id": "already exists"}) from None
    tier_rows = Tier.objects.bulk_create(
        Tier(
            run=created,
            tier_id=t.tier_id,
            tier_index=t.tier_index,
            name=t.name,
            description=t.description,
            state=TierState.PENDING,
            created_at=now,
            updated_at=now,
        )
        for t in tiers
    )
    by_tier_id = {t.tier_id: t for t in tier_rows}
    Phase.objects.bulk_create(
        Phase(
            run=created,
            tier=by_tier_id[p.tier_id],
            phase_id=p.phase_id,
            phase_index=p.phase_index,
            name=p.name,
            description=p.description,
            task_category=p.task_category,
            complexity=p.complexity,
            builder_mode=p.builder_mode,
            created_at=now,
            updated_at=now,
        )
        for p in phases
    )
    for tier in tier_rows:
        _refresh_tier(tier, now)
    unclaimed = UnclaimedUsage.objects.filter(run_id=run.run_id)
    early = dict(unclaimed.values_list("phase_id", "tokens"))
    if early:
        unclaimed.delete()
        _add_tokens(created, early, now)
    return created


@transaction.atomic
def update_phase_status(
    *, run_id: str, phase_id: str, state: str, report: PhaseReport | None = None, actor: str = EXECUTOR
) -> Phase:
    """Move a phase (or re-report it in its state) and record the figures the executor reported.

    `actor` names who reported it in the run's history (the key's name, when one was used).
    """
    run, phase = _lock_phase(run_id, phase_id)
    now = clock.now()
    _move_phase(run, phase, state, now, actor=actor)
    if report is not None:
        _apply_report(phase, report)
    return _save_phase_change(run, phase, now)


@transaction.atomic
def record_issue(*, run_id: str, phase_id: str, issue: IssueSpec) -> PhaseIssue:
    """Record an issue of a phase; a key already recorded for the phase raises its occurrences only."""
    run, phase = _lock_phase(run_id, phase_id)
    _refuse_if_finished(run)
    now = clock.now()
    recorded = _upsert_issue(phase, issue, now)
    _save_phase_change(run, phase, now)
    return recorded


@transaction.atomic
def record_builder_result(
    *, run_id: str, phase_id: str, status: str, report: PhaseReport, issues: list[IssueSpec]
) -> Phase:
    """Apply a Builder's result: attempts, tokens, suggested issues, and the phase's next state."""
    return _record_agent_result(run_id, phase_id, BUILDER_STATUS_MOVES[status], report, issues, add_tokens=False)


@transaction.atomic
def request_audit(*, run_id: str, phase_id: str) -> Phase:
    """Put a phase in GATE, awaiting its Auditor."""
    run, phase = _lock_phase(run_id, phase_id)
    now = clock.now()
    _move_phase(run, phase, PhaseState.GATE, now)
    return _save_phase_change(run, phase, now)


@transaction.atomic
def record_auditor_result(
    *, run_id: str, phase_id: str, recommendation: str, report: PhaseReport, issues: list[IssueSpec]
) -> Phase:
    """Apply an Auditor's verdict: approve completes, revise sends back to EXECUTING, escalate fails."""
    return _record_agent_result(run_id, phase_id, AUDITOR_MOVES[recommendation], report, issues, add_tokens=True)


def _record_agent_result(
    run_id: str, phase_id: str, state: str, report: PhaseReport, issues: list[IssueSpec], *, add_tokens: bool
) -> Phase:
    run, phase = _lock_phase(run_id, phase_id)
    now = clock.now()
    _move_phase(run, phase, state, now)
    # The original's contract: the Builder's result sets the phase's tokens, the Auditor's adds to them.
    _apply_report(phase, report, add_tokens=add_tokens)
    for issue in issues:
        _upsert_issue(phase, issue, now)
    return _save_phase_change(run, phase, now)


@transaction.atomic
def update_run_status(*, run_id: str, state: str, failure_reason: str | None = None) -> Run:
    """Set a run-level state an executor owns (GATE, CI_RUNNING, SNAPSHOT_CREATED, DONE_FAILED_*)."""
    run = _lock_run(run_id)
    _refuse_if_finished(run)
    if state not in EXECUTOR_RUN_STATES:
        raise Conflict(
            f"{state} is not set by the executor: the server derives it from the run's phases",
            {"state": "derived by the server"},
        )
    now = clock.now()
    _log(run, now, action=STATE_CHANGE, actor=EXECUTOR, from_state=run.state, to_state=state)
    run.state = state
    if failure_reason is not None:
        run.failure_reason = failure_reason
    if run.is_terminal:
        run.completed_at = now
        _lift_pause(run)
    elif run.started_at is None and state not in NOT_STARTED_RUN_STATES:
        run.started_at = now
    run.version += 1
    run.updated_at = now
    run.save()
    return run


@transaction.atomic
def control_run(*, run_id: str, action: str, actor: str, reason: str = "") -> Run:
    """Pause, resume or cancel a run, written to its history with who and why.

    Pause is a flag (LlmService refuses the run's calls while it is set); cancel finishes the run as
    DONE_FAILED_REQUIRES_HUMAN_REVIEW with failure_reason "cancelled: <reason>". A move that does not
    apply (resume a run that is not paused, anything on a finished run) raises Conflict saying why.
    """
    if action not in RUN_ACTIONS:
        raise InvalidInput("Invalid control", {"action": f"must be one of: {', '.join(RUN_ACTIONS)}"})
    run = _lock_run(run_id)
    if run.is_terminal:
        why = f" ({run.failure_reason})" if run.failure_reason else ""
        raise Conflict(f"Run '{run_id}' is finished ({run.state}){why}; it cannot {action}", {"action": "illegal move"})
    now = clock.now()
    if action == PAUSE:
        if run.is_paused:
            raise Conflict(
                f"Run '{run_id}' is already paused (by {run.paused_by or 'someone'} at {run.paused_at:%H:%M:%S})",
                {"action": "illegal move"},
            )
        run.paused_at, run.paused_by, run.pause_reason = now, actor, reason
        _log(run, now, action=action, actor=actor, reason=reason)
    elif action == RESUME:
        if not run.is_paused:
            raise Conflict(f"Run '{run_id}' is not paused; only a paused run can resume", {"action": "illegal move"})
        _lift_pause(run)
        _log(run, now, action=action, actor=actor, reason=reason)
    else:
        _finish_run(
            run,
            now,
            RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
            action=action,
            actor=actor,
            reason=reason,
            failure_reason=f"cancelled: {reason or f'by {actor}, no reason given'}",
        )
    run.version += 1
    run.updated_at = now
    run.save()
    return run


@transaction.atomic
def control_phase(*, run_id: str, phase_id: str, action: str, actor: str, reason: str = "") -> Phase:
    """A person's move on a phase: retry a FAILED one (QUEUED), skip a QUEUED or FAILED one (SKIPPED),
    approve one waiting at GATE (COMPLETE). Written to the run's history with who and why.
    """
    if action not in PHASE_ACTIONS:
        raise InvalidInput("Invalid control", {"action": f"must be one of: {', '.join(PHASE_ACTIONS)}"})
    run, phase = _lock_phase(run_id, phase_id)
    _refuse_if_finished(run)
    applies_to, state = PHASE_ACTIONS[action]
    if phase.state not in applies_to:
        raise Conflict(
            f"Phase '{phase_id}' is {phase.state}; {action} applies to a phase that is {' or '.join(applies_to)}",
            {"action": "illegal move"},
        )
    now = clock.now()
    _set_phase_state(run, phase, state, now, action=action, actor=actor, reason=reason)
    return _save_phase_change(run, phase, now)


@transaction.atomic
def end_run_over_budget(*, run_id: str, actor: str, reason: str) -> Run:
    """Finish a run as DONE_FAILED_BUDGET_EXHAUSTED; `reason` names the limit and the figures."""
    run = _lock_run(run_id)
    if run.is_terminal:
        return run
    now = clock.now()
    _finish_run(
        run,
        now,
        RunState.DONE_FAILED_BUDGET_EXHAUSTED,
        action=STATE_CHANGE,
        actor=actor,
        reason=reason,
        failure_reason=reason,
    )
    run.version += 1
    run.updated_at = now
    run.save()
    return run


def _finish_run(run: Run, now, state: str, *, action: str, actor: str, reason: str, failure_reason: str) -> None:
    _log(run, now, action=action, actor=actor, from_state=run.state, to_state=state, reason=reason)
    run.state = state
    run.failure_reason = failure_reason[:DESCRIPTION_CHARS]
    run.completed_at = now
    _lift_pause(run)


def _lift_pause(run: Run) -> None:
    # A finished run takes no calls at all: a pause no longer means anything (its history keeps it).
    run.paused_at, run.paused_by, run.pause_reason = None, "", ""


@transaction.atomic
def edit_run(
    *,
    run_id: str,
    changes: dict | None = None,
    tier_changes: dict[str, dict] | None = None,
    phase_changes: dict[str, dict] | None = None,
) -> Run:
    """Change a run's settings and its tiers' and phases' descriptions (keyed by tier_id and phase_id).

    The run and every changed row get a new version, so an open dashboard's next poll carries them.
    Nothing stored derives from these fields (token utilisation is computed when read).
    """
    run = _lock_run(run_id)
    changes, tier_changes, phase_changes = changes or {}, tier_changes or {}, phase_changes or {}
    tiers = {t.tier_id: t for t in Tier.objects.filter(run=run, tier_id__in=tier_changes)}
    phases = {p.phase_id: p for p in Phase.objects.filter(run=run, phase_id__in=phase_changes)}
    errors = run_settings_errors(run=run, changes=changes)
    errors |= _row_errors("tiers", tier_changes, tiers, TIER_FIELD_RULES)
    errors |= _row_errors("phases", phase_changes, phases, PHASE_FIELD_RULES)
    if errors:
        raise InvalidInput("Invalid run settings", errors)
    if not (changes or tier_changes or phase_changes):
        return run
    now = clock.now()
    run.version += 1
    for rows, changes_by_id in ((tiers, tier_changes), (phases, phase_changes)):
        for row_id, fields in changes_by_id.items():
            row = rows[row_id]
            for name, value in fields.items():
                setattr(row, name, value)
            row.version, row.updated_at = run.version, now
            row.save(update_fields=[*fields, "version", "updated_at"])
    for name, value in changes.items():
        setattr(run, name, value)
    run.updated_at = now
    run.save(update_fields=[*changes, "version", "updated_at"])
    return run


def run_settings_errors(*, run: Run, changes: dict) -> dict[str, str]:
    """What is wrong with new settings for `run`, by field name; empty when `edit_run` may apply them."""
    errors = {}
    for name, value in changes.items():
        rules = RUN_SETTING_RULES.get(name)
        reason = "cannot be changed" if rules is None else _value_error(value, **rules)
        if reason:
            errors[name] = reason
    if "max_phases" in changes and "max_phases" not in errors:
        count = Phase.objects.filter(run=run).count()
        if changes["max_phases"] < count:
            errors["max_phases"] = f"may not be below the run's {count} phases"
    return errors


def _row_errors(kind: str, changes_by_id: dict[str, dict], rows: dict, rules: dict) -> dict[str, str]:
    errors = {}
    for row_id, fields in changes_by_id.items():
        if row_id not in rows:
            errors[f"{kind}.{row_id}"] = "not in this run"
            continue
        for name, value in fields.items():
            reason = "cannot be changed" if name not in rules else _value_error(value, **rules[name])
            if reason:
                errors[f"{kind}.{row_id}.{name}"] = reason
    return errors


def _value_error(
    value, *, minimum=None, maximum=None, choices=None, max_length=None, required=False, dollars=False
) -> str | None:
    if dollars:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            return "must be an amount in dollars"
        return None if Decimal("0.01") <= value <= MAX_BUDGET_USD else f"must be between 0.01 and {MAX_BUDGET_USD:,}"
    if minimum is not None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        return None if minimum <= value <= maximum else f"must be between {minimum:,} and {maximum:,}"
    if not isinstance(value, str):
        return "must be text"
    if choices is not None and value not in choices:
        return f"must be one of: {', '.join(c for c in choices if c)}"
    if required and not value.strip():
        return "may not be empty"
    if max_length is not None and len(value) > max_length:
        return f"may be at most {max_length:,} characters"
    return None


@transaction.atomic
def delete_issue(*, issue_id: int) -> Phase:
    """Delete a recorded issue; its phase's, tier's and run's issue counts follow, under a new version."""
    found = PhaseIssue.objects.filter(pk=issue_id).values_list("phase__run__run_id", "phase__phase_id").first()
    if found is None:
        raise NotFound(f"Issue {issue_id} not found")
    run, phase = _lock_phase(*found)
    deleted, _ = PhaseIssue.objects.filter(pk=issue_id, phase=phase).delete()
    if not deleted:
        raise NotFound(f"Issue {issue_id} not found")
    return _save_phase_change(run, phase, clock.now())


@transaction.atomic
def delete_run(*, run_id: str) -> None:
    """Delete a run with its tiers, phases and issues.

    The database also cascades the rows other apps hang on the run (its overrides, its notes); a
    caller that must log or rewrite something for those goes through `routing.services.delete_run`,
    which calls this last.
    """
    _lock_run(run_id).delete()


# Part of the caller's transaction (usage recording) when there is one: no savepoint, whose two round
# trips would cost more than the rest; a failure here fails the whole recording, as it should.
@transaction.atomic(savepoint=False)
def add_usage_tokens(*, tokens_by_run: dict[str, dict[str, int]]) -> None:
    """Add usage events' tokens to runs' phases ("" or an unknown phase: the run itself).

    Usage may name a run before `/runs/start` creates it (planning calls): those tokens wait in
    UnclaimedUsage, and start_run adds them to the run it creates.
    """
    run_ids = sorted(tokens_by_run)
    # Sorted, so concurrent batches lock runs in the same order and cannot deadlock.
    runs = {r.run_id: r for r in Run.objects.select_for_update().filter(run_id__in=run_ids).order_by("run_id")}
    waiting = [run_id for run_id in run_ids if run_id not in runs]
    if waiting:
        # Serialised with start_run of the same ids, then look again: a start that was committing
        # while we looked must not miss these tokens.
        _lock_run_ids(waiting)
        runs |= {r.run_id: r for r in Run.objects.select_for_update().filter(run_id__in=waiting).order_by("run_id")}
        _hold_unclaimed([(r, p, t) for r in waiting if r not in runs for p, t in sorted(tokens_by_run[r].items())])
    now = clock.now()
    for run_id in sorted(runs):
        _add_tokens(runs[run_id], tokens_by_run[run_id], now)


def _hold_unclaimed(rows: list[tuple[str, str, int]]) -> None:
    """Add (run_id, phase_id, tokens) to the tokens waiting for their run, one statement for all."""
    if not rows:
        return
    table = UnclaimedUsage._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (run_id, phase_id, tokens) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (run_id, phase_id) DO UPDATE SET tokens = {table}.tokens + excluded.tokens",
            rows,
        )


def _add_tokens(run: Run, tokens_by_phase: dict[str, int], now) -> None:
    """Add metered tokens to phases, their tiers and the run, as increments.

    Tokens move no state, issue count or start, so nothing is summed again: each phase's effective
    figure changes by some amount, and its tier and the run by the same. The run's row is locked
    (every write to a run's phases takes that lock first), so the increments cannot interleave.
    """
    run.version += 1
    named = [phase_id for phase_id in tokens_by_phase if phase_id]
    phases = {
        p.phase_id: p
        for p in Phase.objects.filter(run=run, phase_id__in=named).only(
            "phase_id", "tier_id", "reported_tokens", "usage_tokens", "tokens_used"
        )
    }
    without_phase = metered = 0
    by_tier: dict[int, int] = defaultdict(int)
    for phase_id, tokens in tokens_by_phase.items():
        metered += tokens
        phase = phases.get(phase_id)
        if phase is None:
            without_phase += tokens
            continue
        before = phase.tokens_used
        phase.usage_tokens = (phase.usage_tokens or 0) + tokens
        phase.tokens_used = effective_tokens(phase)
        Phase.objects.filter(pk=phase.pk).update(
            usage_tokens=phase.usage_tokens, tokens_used=phase.tokens_used, version=run.version, updated_at=now
        )
        by_tier[phase.tier_id] += phase.tokens_used - before
    for tier_id, added in sorted(by_tier.items()):
        Tier.objects.filter(pk=tier_id).update(
            tokens_used=F("tokens_used") + added, version=run.version, updated_at=now
        )
    run.usage_tokens_without_phase += without_phase
    run.tokens_used += without_phase + sum(by_tier.values())
    run.tokens_metered += metered
    run.updated_at = now
    Run.objects.filter(pk=run.pk).update(
        usage_tokens_without_phase=run.usage_tokens_without_phase,
        tokens_used=run.tokens_used,
        tokens_metered=run.tokens_metered,
        version=run.version,
        updated_at=now,
    )


def _lock_run_ids(run_ids: list[str]) -> None:
    """Hold run_ids until the transaction ends, in sorted order (PostgreSQL; SQLite has one writer)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(run_id)) FROM unnest(%s::text[]) AS run_id",
                [RUN_ID_LOCK, sorted(run_ids)],
            )


# --- the pieces every write shares -------------------------------------------------------------


def _lock_run(run_id: str) -> Run:
    # Lock the run row: two executors may report phases of one run at once.
    run = Run.objects.select_for_update().filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    return run


def _lock_phase(run_id: str, phase_id: str) -> tuple[Run, Phase]:
    run = _lock_run(run_id)
    phase = Phase.objects.select_related("tier").filter(run=run, phase_id=phase_id).first()
    if phase is None:
        raise NotFound(f"Phase '{phase_id}' not found in run '{run_id}'")
    phase.run = run
    return run, phase


def _refuse_if_finished(run: Run) -> None:
    if run.is_terminal:
        why = f" ({run.failure_reason})" if run.failure_reason else ""
        raise Conflict(f"Run '{run.run_id}' is finished ({run.state}); nothing in it can change{why}")


def _move_phase(run: Run, phase: Phase, state: str, now, *, actor: str = EXECUTOR) -> None:
    """Check and apply a phase's state move an executor reported, with its start and completion times."""
    if state not in PhaseState.values:
        raise InvalidInput("Invalid phase status", {"state": f"unknown phase state '{state}'"})
    _refuse_if_finished(run)
    if phase.state in FINISHED_PHASE_STATES and state != phase.state and state not in REOPEN_PHASE_STATES:
        raise Conflict(
            f"Phase '{phase.phase_id}' is {phase.state}; a finished phase may only be reopened "
            f"to QUEUED or EXECUTING, not moved to {state}",
            {"state": "illegal move"},
        )
    _set_phase_state(run, phase, state, now, action=STATE_CHANGE, actor=actor)


def _set_phase_state(run: Run, phase: Phase, state: str, now, *, action: str, actor: str, reason: str = "") -> None:
    """Apply a checked move, with its times and the run's start, and write it to the run's history."""
    if state != phase.state or action != STATE_CHANGE:
        _log(
            run,
            now,
            action=action,
            actor=actor,
            phase_id=phase.phase_id,
            from_state=phase.state,
            to_state=state,
            reason=reason,
        )
    phase.state = state
    # A skipped phase never ran, so it has no start; every other move past QUEUED is one.
    if state in RUNNING_PHASE_STATES or (state in FINISHED_PHASE_STATES and state != PhaseState.SKIPPED):
        phase.started_at = phase.started_at or now
    if state in FINISHED_PHASE_STATES:
        phase.completed_at = phase.completed_at or now
    else:
        phase.completed_at = None
    if phase.started_at and run.state in NOT_STARTED_RUN_STATES:
        _log(run, now, action=STATE_CHANGE, actor=actor, from_state=run.state, to_state=RunState.PHASE_EXECUTION)
        run.state = RunState.PHASE_EXECUTION
        run.started_at = run.started_at or phase.started_at


def _apply_report(phase: Phase, report: PhaseReport, *, add_tokens: bool = False) -> None:
    if report.builder_attempts is not None:
        phase.builder_attempts = report.builder_attempts
    if report.auditor_attempts is not None:
        phase.auditor_attempts = report.auditor_attempts
    if report.tokens_used is not None:
        phase.reported_tokens = phase.reported_tokens + report.tokens_used if add_tokens else report.tokens_used
    if report.minor_issues_count is not None:
        phase.reported_minor_issues = report.minor_issues_count
    if report.major_issues_count is not None:
        phase.reported_major_issues = report.major_issues_count


def _upsert_issue(phase: Phase, issue: IssueSpec, now) -> PhaseIssue:
    existing = PhaseIssue.objects.filter(phase=phase, issue_key=issue.issue_key).first()
    if existing is None:
        return PhaseIssue.objects.create(
            phase=phase,
            issue_key=issue.issue_key,
            severity=issue.severity,
            source=issue.source,
            category=issue.category,
            evidence_refs=issue.evidence_refs,
            first_seen_at=now,
            last_seen_at=now,
        )
    existing.occurrences += 1
    existing.last_seen_at = now
    # A repeat may escalate an issue; it never quietly downgrades one.
    if issue.severity == "major":
        existing.severity = "major"
    existing.evidence_refs = list(dict.fromkeys([*existing.evidence_refs, *issue.evidence_refs]))[:100]
    existing.save()
    return existing


def _save_phase_change(run: Run, phase: Phase, now) -> Phase:
    """Store a changed phase and bring its tier and run up to date, under a new version."""
    _refresh_phase_figures(phase)
    run.version += 1
    phase.version = run.version
    phase.updated_at = now
    phase.save()
    _refresh_tier(phase.tier, now, version=run.version)
    _refresh_run(run, now)
    return phase


def effective_tokens(phase: Phase) -> int:
    """The larger of what the executor reported and what was metered from recorded calls.

    Neither alone is safe: calls that bypass us are missing from the metered figure, and an
    executor may under-report; caps must hold against the larger.
    """
    return max(phase.reported_tokens, phase.usage_tokens or 0)


def _refresh_phase_figures(phase: Phase) -> None:
    phase.tokens_used = effective_tokens(phase)
    counts = PhaseIssue.objects.filter(phase=phase).aggregate(
        minor=Count("id", filter=Q(severity="minor")), major=Count("id", filter=Q(severity="major"))
    )
    if counts["minor"] or counts["major"]:
        phase.minor_issues_count, phase.major_issues_count = counts["minor"], counts["major"]
    else:
        phase.minor_issues_count = phase.reported_minor_issues
        phase.major_issues_count = phase.reported_major_issues


def derive_tier_state(phase_states: list[str]) -> str:
    """A tier's state from its phases' states. An empty tier has nothing to run: SKIPPED."""
    if all(s in DONE_PHASE_STATES for s in phase_states):
        return TierState.SKIPPED if not phase_states else TierState.COMPLETE
    if PhaseState.FAILED in phase_states and not any(s in RUNNING_PHASE_STATES for s in phase_states):
        return TierState.FAILED
    if any(s != PhaseState.QUEUED for s in phase_states):
        return TierState.IN_PROGRESS
    return TierState.PENDING


def _refresh_tier(tier: Tier, now, version: int | None = None) -> None:
    rows = list(
        Phase.objects.filter(tier=tier).values_list(
            "state", "tokens_used", "minor_issues_count", "major_issues_count", "started_at"
        )
    )
    tier.state = derive_tier_state([r[0] for r in rows])
    tier.tokens_used = sum(r[1] for r in rows)
    tier.minor_issues_count = sum(r[2] for r in rows)
    tier.major_issues_count = sum(r[3] for r in rows)
    starts = [r[4] for r in rows if r[4] is not None]
    tier.started_at = min(starts) if starts else None
    if tier.state in FINISHED_TIER_STATES and rows:
        tier.completed_at = tier.completed_at or now
    else:
        tier.completed_at = None
    if version is not None:
        tier.version = version
    tier.updated_at = now
    tier.save()


def _refresh_run(run: Run, now) -> None:
    totals = Phase.objects.filter(run=run).aggregate(
        tokens=Sum("tokens_used"),
        reported=Sum("reported_tokens"),
        metered=Sum("usage_tokens"),
        minor=Sum("minor_issues_count"),
        major=Sum("major_issues_count"),
        total=Count("id"),
        unfinished=Count("id", filter=~Q(state__in=FINISHED_PHASE_STATES)),
        failed=Count("id", filter=Q(state=PhaseState.FAILED)),
    )
    run.tokens_used = (totals["tokens"] or 0) + run.usage_tokens_without_phase
    run.tokens_reported = totals["reported"] or 0
    run.tokens_metered = (totals["metered"] or 0) + run.usage_tokens_without_phase
    run.minor_issues_count = totals["minor"] or 0
    run.major_issues_count = totals["major"] or 0
    if totals["total"] and not totals["unfinished"] and not run.is_terminal:
        _finalise_run(run, failed=totals["failed"], now=now)
    run.updated_at = now
    run.save()


def _finalise_run(run: Run, *, failed: int, now) -> None:
    run.completed_at = now
    _lift_pause(run)
    before = run.state
    if not failed:
        run.state = RunState.DONE_SUCCESS
    else:
        run.state = RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
        if not run.failure_reason:
            failed_ids = list(
                Phase.objects.filter(run=run, state=PhaseState.FAILED).values_list("phase_id", flat=True)[:5]
            )
            run.failure_reason = f"{failed} phase(s) failed: {', '.join(failed_ids)}"
    why = run.failure_reason if failed else "every phase is finished"
    _log(run, now, action=STATE_CHANGE, actor=SERVER, from_state=before, to_state=run.state, reason=why)


def _log(run: Run, now, *, action: str, actor: str, phase_id="", from_state="", to_state="", reason="") -> RunEvent:
    """Write one entry of the run's history (its timeline), in the transaction of the change it records."""
    return RunEvent.objects.create(
        run=run,
        action=action,
        phase_id=phase_id,
        from_state=from_state,
        to_state=to_state,
        actor=actor[:150],
        reason=reason,
        created_at=now,
    )
