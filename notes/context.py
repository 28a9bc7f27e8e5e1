"""The plain-text context of a run, to paste into a chat with an assistant."""

from notes.models import HumanNote
from runs.models import Phase, Run
from runs.progress import run_progress
from runs.states import PhaseState
from usage.aggregation import run_models


def run_context_text(run: Run) -> str:
    progress = run_progress(run)
    lines = [
        f"Autopack run {run.run_id}",
        f"State: {run.state}",
        f"Progress: {progress.percent_complete}% ({progress.completed_phases} of {progress.total_phases} phases done)",
    ]
    if progress.current_tier:
        lines.append(f"Current tier: {progress.current_tier.name} (#{progress.current_tier.tier_index})")
    if progress.current_phase:
        phase = progress.current_phase
        lines.append(f"Current phase: {phase.name} (#{phase.phase_index}, {phase.state})")
    lines.append(f"Tokens: {run.tokens_used:,} of {run.token_cap:,} ({progress.token_utilization}%)")
    lines.append(f"Issues: {run.minor_issues_count} minor, {run.major_issues_count} major")
    failed = (
        Phase.objects.filter(run=run, state=PhaseState.FAILED)
        .order_by("-completed_at", "-id")
        .prefetch_related("issues")
        .first()
    )
    if failed:
        issues = ", ".join(f"{i.issue_key} ({i.severity})" for i in failed.issues.all()) or "no issue recorded"
        lines.append(f"Last failed phase: {failed.name} ({failed.phase_id}): {issues}")
    if run.failure_reason:
        lines.append(f"Failure reason: {run.failure_reason}")
    notes = list(HumanNote.objects.filter(run=run)[:3])
    if notes:
        lines.append("Last notes:")
        lines += [f"- {n.created_at:%Y-%m-%d %H:%M} UTC: {n.text}" for n in notes]
    models = run_models(run.run_id)[:3]
    if models:
        lines.append("Models in this run: " + ", ".join(f"{model} ({tokens:,} tokens)" for model, tokens in models))
    return "\n".join(lines) + "\n"
