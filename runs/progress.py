"""Run progress as the dashboard and `/dashboard/runs/<id>/status` report it.

Two queries whatever the run's size: its tiers, and its phases' states and times.
"""

from dataclasses import dataclass, field

from autopack_site import clock
from runs.models import Phase, Run, Tier
from runs.states import DONE_PHASE_STATES, DONE_TIER_STATES, FINISHED_PHASE_STATES


@dataclass
class Progress:
    run: Run
    tiers: list = field(default_factory=list)
    current_tier: Tier | None = None
    current_phase: Phase | None = None
    total_tiers: int = 0
    total_phases: int = 0
    completed_tiers: int = 0
    completed_phases: int = 0
    percent_complete: float = 0.0
    tiers_percent_complete: float = 0.0
    token_utilization: float = 0.0
    elapsed_seconds: int = 0
    eta_seconds: int | None = None

    @property
    def token_level(self) -> str:
        return level_for(self.token_utilization)

    @property
    def tokens_over_cap(self) -> int:
        return max(0, self.run.tokens_used - self.run.token_cap)

    def as_status(self) -> dict:
        run = self.run
        return {
            "run_id": run.run_id,
            "state": run.state,
            "current_tier_name": self.current_tier.name if self.current_tier else None,
            "current_phase_name": self.current_phase.name if self.current_phase else None,
            "current_tier_index": self.current_tier.tier_index if self.current_tier else None,
            "current_phase_index": self.current_phase.phase_index if self.current_phase else None,
            "total_tiers": self.total_tiers,
            "total_phases": self.total_phases,
            "completed_tiers": self.completed_tiers,
            "completed_phases": self.completed_phases,
            "percent_complete": self.percent_complete,
            "tiers_percent_complete": self.tiers_percent_complete,
            "tokens_used": run.tokens_used,
            "tokens_reported": run.tokens_reported,
            "tokens_metered": run.tokens_metered,
            "token_cap": run.token_cap,
            "token_utilization": self.token_utilization,
            "minor_issues_count": run.minor_issues_count,
            "major_issues_count": run.major_issues_count,
            "elapsed_seconds": self.elapsed_seconds,
            "eta_seconds": self.eta_seconds,
        }


def level_for(percent: float) -> str:
    """Colour level of a usage bar: warning above 80%, danger above 90%, exceeded at 100%."""
    if percent >= 100:
        return "exceeded"
    if percent > 90:
        return "danger"
    if percent > 80:
        return "warning"
    return "ok"


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def run_progress(run: Run, *, phases: list[Phase] | None = None) -> Progress:
    """Progress of `run`; pass its phases when the caller already loaded them."""
    tiers = list(run.tiers.all())
    if phases is None:
        phases = list(
            Phase.objects.filter(run=run)
            .only("id", "tier_id", "phase_index", "name", "state", "started_at", "completed_at")
            .order_by("phase_index", "id")
        )
    by_tier: dict[int, list[Phase]] = {t.pk: [] for t in tiers}
    for phase in sorted(phases, key=lambda p: (p.phase_index, p.pk)):
        by_tier[phase.tier_id].append(phase)

    progress = Progress(run=run, tiers=tiers, total_tiers=len(tiers), total_phases=len(phases))
    progress.completed_phases = sum(1 for p in phases if p.state in DONE_PHASE_STATES)
    progress.completed_tiers = sum(1 for t in tiers if t.state in DONE_TIER_STATES)
    progress.percent_complete = percent(progress.completed_phases, progress.total_phases)
    progress.tiers_percent_complete = percent(progress.completed_tiers, progress.total_tiers)
    # Not capped at 100: a run 40 times over its cap says 4000%.
    progress.token_utilization = percent(run.tokens_used, run.token_cap)

    # The current tier is the first with phases left to finish (a FAILED tier may still have queued
    # ones the executor goes on with); its first unfinished phase is current.
    for tier in tiers:
        unfinished = [p for p in by_tier[tier.pk] if p.state not in FINISHED_PHASE_STATES]
        if unfinished:
            progress.current_tier, progress.current_phase = tier, unfinished[0]
            break

    now = clock.now()
    if run.started_at:
        end = run.completed_at or now
        progress.elapsed_seconds = max(0, int((end - run.started_at).total_seconds()))
    progress.eta_seconds = _eta_seconds(run, phases, now)
    return progress


def _eta_seconds(run: Run, phases: list[Phase], now) -> int | None:
    """Mean duration of finished phases times the phases left, less the current one's time so far."""
    if run.is_terminal:
        return 0
    durations = [
        (p.completed_at - p.started_at).total_seconds()
        for p in phases
        if p.state in FINISHED_PHASE_STATES and p.started_at and p.completed_at
    ]
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    remaining = 0.0
    for p in phases:
        if p.state in FINISHED_PHASE_STATES:
            continue
        spent = (now - p.started_at).total_seconds() if p.started_at else 0.0
        remaining += max(0.0, mean - spent)
    return int(round(remaining))


def phases_with_issues(run: Run, **filters) -> list[Phase]:
    """A run's phases in order, with their recorded issues, for the run page's rows."""
    return list(Phase.objects.filter(run=run, **filters).prefetch_related("issues").order_by("phase_index", "id"))
