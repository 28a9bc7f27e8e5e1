"""JSON shapes of runs, tiers and phases, with the original Autopack API's field names."""

from runs.models import Phase, PhaseIssue, Run, RunEvent, Tier
from runs.states import RUN_ACTIONS


def _time(value):
    return value.isoformat() if value else None


def issue_json(issue: PhaseIssue) -> dict:
    return {
        "issue_key": issue.issue_key,
        "severity": issue.severity,
        "source": issue.source,
        "category": issue.category,
        "evidence_refs": issue.evidence_refs,
        "occurrences": issue.occurrences,
        "first_seen_at": _time(issue.first_seen_at),
        "last_seen_at": _time(issue.last_seen_at),
    }


def phase_json(phase: Phase, *, run_id: str, tier_id: str) -> dict:
    return {
        "id": phase.pk,
        "phase_id": phase.phase_id,
        "run_id": run_id,
        "tier_id": tier_id,
        "phase_index": phase.phase_index,
        "name": phase.name,
        "description": phase.description,
        "task_category": phase.task_category or None,
        "complexity": phase.complexity or None,
        "builder_mode": phase.builder_mode or None,
        "state": phase.state,
        "builder_attempts": phase.builder_attempts,
        "auditor_attempts": phase.auditor_attempts,
        "tokens_used": phase.tokens_used,
        "tokens_reported": phase.reported_tokens,
        "tokens_metered": phase.usage_tokens or 0,
        "minor_issues_count": phase.minor_issues_count,
        "major_issues_count": phase.major_issues_count,
        "created_at": _time(phase.created_at),
        "updated_at": _time(phase.updated_at),
        "started_at": _time(phase.started_at),
        "completed_at": _time(phase.completed_at),
    }


def tier_json(tier: Tier, run_id: str, phases: list[dict]) -> dict:
    return {
        "id": tier.pk,
        "tier_id": tier.tier_id,
        "run_id": run_id,
        "tier_index": tier.tier_index,
        "name": tier.name,
        "description": tier.description,
        "state": tier.state,
        "tokens_used": tier.tokens_used,
        "minor_issues_count": tier.minor_issues_count,
        "major_issues_count": tier.major_issues_count,
        "created_at": _time(tier.created_at),
        "updated_at": _time(tier.updated_at),
        "started_at": _time(tier.started_at),
        "completed_at": _time(tier.completed_at),
        "phases": phases,
    }


def run_summary_json(run: Run) -> dict:
    return {
        "id": run.run_id,
        "state": run.state,
        "safety_profile": run.safety_profile,
        "run_scope": run.run_scope,
        "created_at": _time(run.created_at),
        "updated_at": _time(run.updated_at),
        "started_at": _time(run.started_at),
        "completed_at": _time(run.completed_at),
        "token_cap": run.token_cap,
        "max_phases": run.max_phases,
        "max_duration_minutes": run.max_duration_minutes,
        "tokens_used": run.tokens_used,
        "tokens_reported": run.tokens_reported,
        "tokens_metered": run.tokens_metered,
        "minor_issues_count": run.minor_issues_count,
        "major_issues_count": run.major_issues_count,
        "failure_reason": run.failure_reason or None,
        "budget_usd": _dollars(run.budget_usd),
        **pause_json(run),
        "is_demo": run.is_demo,
    }


def _dollars(value):
    return float(value) if value is not None else None


def pause_json(run: Run) -> dict:
    """Pause is a flag beside the state: whether it is set, since when, by whom and why."""
    return {
        "paused": run.is_paused,
        "paused_at": _time(run.paused_at),
        "paused_by": run.paused_by or None,
        "pause_reason": run.pause_reason or None,
    }


def directive(run: Run) -> str:
    """What an executor polling the control endpoint should do now."""
    if run.is_terminal:
        return "stop"
    return "pause" if run.is_paused else "continue"


def control_json(run: Run) -> dict:
    """GET /runs/{run_id}/control: the directive, the state and pause behind it, and the last action taken."""
    last = RunEvent.objects.filter(run=run, action__in=RUN_ACTIONS).order_by("-created_at", "-id").first()
    return {
        "run_id": run.run_id,
        "directive": directive(run),
        "state": run.state,
        **pause_json(run),
        "failure_reason": run.failure_reason or None,
        "last_action": (
            {"action": last.action, "by": last.actor, "reason": last.reason, "at": _time(last.created_at)}
            if last
            else None
        ),
    }


def run_json(run: Run) -> dict:
    """The whole run: its summary, `tiers[]` each with its `phases[]`, and a top-level `phases[]`."""
    tiers = list(run.tiers.all())
    tier_ids = {t.pk: t.tier_id for t in tiers}
    phases_by_tier: dict[int, list[dict]] = {t.pk: [] for t in tiers}
    all_phases = []
    for phase in Phase.objects.filter(run=run).order_by("phase_index", "id"):
        data = phase_json(phase, run_id=run.run_id, tier_id=tier_ids[phase.tier_id])
        phases_by_tier[phase.tier_id].append(data)
        all_phases.append(data)
    return {
        **run_summary_json(run),
        "tiers": [tier_json(t, run.run_id, phases_by_tier[t.pk]) for t in tiers],
        "phases": all_phases,
    }
