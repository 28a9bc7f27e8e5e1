"""Phases that look stuck, derived when read: the pages are right without any worker running.

A phase under way (EXECUTING, GATE or CI_RUNNING) of an unfinished run looks stuck when it has had no
status update and no LLM call for longer than AUTOPACK_STUCK_MINUTES. Nothing is stopped: a person
decides.
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import OuterRef, Subquery

from autopack_site import clock
from runs.models import Phase
from runs.states import RUNNING_PHASE_STATES, TERMINAL_RUN_STATES
from usage.models import LlmUsageEvent


@dataclass(frozen=True)
class StuckPhase:
    """A phase that looks stuck, with the evidence: its last update, its last call and that call's model."""

    run_id: str
    phase_id: str
    name: str
    state: str
    last_update: dt.datetime
    last_call_at: dt.datetime | None
    last_call_model: str
    # The later of the two: quiet since then.
    quiet_since: dt.datetime
    quiet_seconds: int

    @property
    def quiet_minutes(self) -> int:
        return self.quiet_seconds // 60

    def describe(self) -> str:
        call = (
            f"last LLM call {self.last_call_at:%Y-%m-%d %H:%M:%S} UTC ({self.last_call_model})"
            if self.last_call_at
            else "no LLM call recorded"
        )
        return (
            f"Phase {self.phase_id} of run {self.run_id} looks stuck in {self.state}: no update for "
            f"{self.quiet_minutes} minutes (last update {self.last_update:%Y-%m-%d %H:%M:%S} UTC, {call})"
        )


def stuck_phases(*, runs=None, now: dt.datetime | None = None) -> list[StuckPhase]:
    """Phases under way with no update and no call for over AUTOPACK_STUCK_MINUTES, of `runs` or of all. One query.

    A paused run's phases are left out: they wait on a person, they have not hung. So are demo runs,
    whose phases stand still by design.
    """
    now = now or clock.now()
    cutoff = now - dt.timedelta(minutes=settings.AUTOPACK_STUCK_MINUTES)
    last_call = LlmUsageEvent.objects.filter(run_id=OuterRef("run__run_id"), phase_id=OuterRef("phase_id")).order_by(
        "-created_at", "-id"
    )
    phases = (
        Phase.objects.filter(
            state__in=RUNNING_PHASE_STATES, updated_at__lt=cutoff, run__paused_at__isnull=True, run__is_demo=False
        )
        .exclude(run__state__in=TERMINAL_RUN_STATES)
        .annotate(
            last_call_at=Subquery(last_call.values("created_at")[:1]),
            last_call_model=Subquery(last_call.values("model")[:1]),
        )
        .values(
            "run__run_id",
            "phase_id",
            "name",
            "state",
            "updated_at",
            "last_call_at",
            "last_call_model",
        )
        .order_by("run__run_id", "phase_index", "id")
    )
    if runs is not None:
        phases = phases.filter(run__in=runs)
    stuck = []
    for row in phases:
        quiet_since = max(row["updated_at"], row["last_call_at"] or row["updated_at"])
        # Strictly longer than the threshold: at exactly AUTOPACK_STUCK_MINUTES a phase is still fine.
        if quiet_since >= cutoff:
            continue
        stuck.append(
            StuckPhase(
                run_id=row["run__run_id"],
                phase_id=row["phase_id"],
                name=row["name"],
                state=row["state"],
                last_update=row["updated_at"],
                last_call_at=row["last_call_at"],
                last_call_model=row["last_call_model"] or "",
                quiet_since=quiet_since,
                quiet_seconds=int((now - quiet_since).total_seconds()),
            )
        )
    return stuck
