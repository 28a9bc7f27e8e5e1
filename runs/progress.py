"""Run progress as the dashboard and `/dashboard/runs/<id>/status` report it.

A fixed number of queries whatever the run's size: its tiers, one aggregate over its phases, its
current phase and the start times of the phases under way; none while the run's version stands.
"""

from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Count, DurationField, F, Q, Sum

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
    def token_threshold(self) -> int | None:
        """The percentage of the cap the run is past, for a danger or warning level."""
        return {"danger": DANGER_PERCENT, "warning": WARNING_PERCENT}.get(self.token_level)

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


# A usage bar turns amber above WARNING_PERCENT of its cap, red above DANGER_PERCENT, and says
# "exceeded" at 100%: for run token caps and provider quotas alike.
WARNING_PERCENT, DANGER_PERCENT = 80, 90


def level_for(percent: float) -> str:
    """Colour level of a usage bar (see WARNING_PERCENT and DANGER_PERCENT)."""
    if percent >= 100:
        return "exceeded"
    if percent > DANGER_PERCENT:
        return "danger"
    if percent > WARNING_PERCENT:
        return "warning"
    return "ok"


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def run_progress(run: Run, *, phases: list[Phase] | None = None) -> Progress:
    """Progress of `run`; pass its phases when the caller already loaded them.

    Without them, a few aggregate queries whatever the run's size: a poll of a 500-phase run costs
    what a poll of a 12-phase one does.
    """
    if phases is not None:
        return _progress_from_phases(run, phases)
    facts = _phase_facts(run)
    progress = _progress(run, facts.tiers, total=facts.total, done=facts.done)
    if facts.current is not None:
        progress.current_phase = facts.current
        progress.current_tier = next(t for t in facts.tiers if t.pk == facts.current.tier_id)
    now = clock.now()
    progress.elapsed_seconds = _elapsed(run, now)
    if run.is_terminal:
        progress.eta_seconds = 0
    elif facts.mean_seconds is not None:
        progress.eta_seconds = _eta(
            facts.mean_seconds, [(now - start).total_seconds() for start in facts.running_since], facts.waiting
        )
    return progress


@dataclass
class _PhaseFacts:
    """What progress needs from a run's tiers and phases: it changes only with the run's version."""

    tiers: list
    total: int
    done: int
    current: Phase | None
    mean_seconds: float | None
    running_since: list
    waiting: int


# Facts are kept per run version: any change to a tier or phase raises it, so a kept entry is never
# stale, in this process or another. Status polls between changes then cost the run's row only.
FACTS_SECONDS = 600


def _phase_facts(run: Run) -> _PhaseFacts:
    # The time of the last change too: a row id that a rolled-back transaction gave out may come again.
    key = f"run-progress:{run.pk}:{run.version}:{run.updated_at.timestamp() if run.updated_at else 0}"
    facts = cache.get(key)
    if facts is None:
        facts = _read_phase_facts(run)
        cache.set(key, facts, FACTS_SECONDS)
    return facts


def _read_phase_facts(run: Run) -> _PhaseFacts:
    tiers = list(run.tiers.all())
    mine = Phase.objects.filter(run=run)
    unfinished = ~Q(state__in=FINISHED_PHASE_STATES)
    timed = Q(state__in=FINISHED_PHASE_STATES, started_at__isnull=False, completed_at__isnull=False)
    figures = mine.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(state__in=DONE_PHASE_STATES)),
        timed=Count("id", filter=timed),
        time_spent=Sum(F("completed_at") - F("started_at"), filter=timed, output_field=DurationField()),
        waiting=Count("id", filter=unfinished & Q(started_at__isnull=True)),
    )
    current = mine.filter(unfinished).order_by("tier__tier_index", "tier_id", "phase_index", "id").first()
    mean, running = None, []
    if figures["timed"] and not run.is_terminal:
        mean = figures["time_spent"].total_seconds() / figures["timed"]
        running = list(mine.filter(unfinished, started_at__isnull=False).values_list("started_at", flat=True))
    return _PhaseFacts(tiers, figures["total"], figures["done"], current, mean, running, figures["waiting"])


def _progress_from_phases(run: Run, phases: list[Phase]) -> Progress:
    tiers = list(run.tiers.all())
    by_tier: dict[int, list[Phase]] = {t.pk: [] for t in tiers}
    for phase in sorted(phases, key=lambda p: (p.phase_index, p.pk)):
        by_tier[phase.tier_id].append(phase)
    done = sum(1 for p in phases if p.state in DONE_PHASE_STATES)
    progress = _progress(run, tiers, total=len(phases), done=done)
    # The current tier is the first with phases left to finish (a FAILED tier may still have queued
    # ones the executor goes on with); its first unfinished phase is current.
    for tier in tiers:
        unfinished = [p for p in by_tier[tier.pk] if p.state not in FINISHED_PHASE_STATES]
        if unfinished:
            progress.current_tier, progress.current_phase = tier, unfinished[0]
            break
    now = clock.now()
    progress.elapsed_seconds = _elapsed(run, now)
    progress.eta_seconds = _eta_seconds(run, phases, now)
    return progress


def _progress(run: Run, tiers: list[Tier], *, total: int, done: int) -> Progress:
    progress = Progress(run=run, tiers=tiers, total_tiers=len(tiers), total_phases=total, completed_phases=done)
    progress.completed_tiers = sum(1 for t in tiers if t.state in DONE_TIER_STATES)
    progress.percent_complete = percent(done, total)
    progress.tiers_percent_complete = percent(progress.completed_tiers, progress.total_tiers)
    # Not capped at 100: a run 40 times over its cap says 4000%.
    progress.token_utilization = percent(run.tokens_used, run.token_cap)
    return progress


def _elapsed(run: Run, now) -> int:
    if not run.started_at:
        return 0
    return max(0, int(((run.completed_at or now) - run.started_at).total_seconds()))


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
    unfinished = [p for p in phases if p.state not in FINISHED_PHASE_STATES]
    running = [(now - p.started_at).total_seconds() for p in unfinished if p.started_at]
    return _eta(sum(durations) / len(durations), running, len(unfinished) - len(running))


def _eta(mean: float, running_for: list[float], waiting: int) -> int:
    """Each phase left takes the mean; one under way has already spent some of it."""
    return int(round(sum(max(0.0, mean - spent) for spent in running_for) + mean * waiting))


def phases_with_issues(run: Run, **filters) -> list[Phase]:
    """A run's phases in order, with their recorded issues, for the run page's rows."""
    return list(Phase.objects.filter(run=run, **filters).prefetch_related("issues").order_by("phase_index", "id"))
