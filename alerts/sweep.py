"""The sweep: every minute, raise the alerts that time alone brings (stuck phases, time limits) and those
of figures that moved (quota windows, run caps and budgets, failed runs).

Raising is idempotent (the alert's unique constraint), so a sweep run twice, or by two workers at once,
raises each alert once. The sweep re-enqueues itself; `SweepSchedule` keeps that to one chain.
"""

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django_tasks import task

from alerts.models import Alert, SweepSchedule
from alerts.services import raise_alert
from alerts.stuck import stuck_phases
from autopack_site import clock
from autopack_site.errors import ConfigError
from routing.budgets import deadline
from routing.config import get_config
from routing.quotas import provider_states
from runs.models import Run
from runs.states import TERMINAL_RUN_STATES, RunState
from usage.models import RunUsageBucket

logger = logging.getLogger(__name__)

QUOTA_THRESHOLDS = (80, 90, 100)
RUN_THRESHOLDS = (80, 100)
FAILED_RUN_STATES = frozenset(TERMINAL_RUN_STATES - {RunState.DONE_SUCCESS})
# Finished runs stay in the sweep this long: a run that failed, or crossed a cap as it ended, while no
# worker ran is still alerted when one starts.
RECENT = dt.timedelta(days=1)
# A chain whose next sweep is this many intervals late is taken for dead and started again.
STALE_INTERVALS = 5


def window_start(window: str, now: dt.datetime) -> dt.datetime:
    """The calendar start of a rolling quota window's period (UTC day, ISO week, month).

    Quota windows roll, so their own start moves every second; an alert is raised once per threshold in
    each calendar day, week or month instead.
    """
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day
    if window == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def raise_due_alerts(now: dt.datetime | None = None) -> int:
    """Raise every alert now due that was not raised before; returns how many were new."""
    now = now or clock.now()
    return _quota_alerts(now) + _run_alerts(now) + _stuck_alerts(now)


def _quota_alerts(now: dt.datetime) -> int:
    try:
        config = get_config()
    except ConfigError as exc:
        logger.warning("Quota alerts skipped: %s", exc)
        return 0
    raised = 0
    for state in provider_states(config, fresh=True).values():
        for window in state.windows:
            for threshold in QUOTA_THRESHOLDS:
                if not window.cap or window.used * 100 < window.cap * threshold:
                    continue
                raised += _raised(
                    kind=Alert.Kind.QUOTA,
                    subject=f"{state.provider} {window.window}",
                    threshold=threshold,
                    window_start=window_start(window.window, now),
                    message=f"{state.describe(window)}: past {threshold}% of it",
                    provider=state.provider,
                )
    return raised


def _run_alerts(now: dt.datetime) -> int:
    runs = list(
        Run.objects.filter(is_demo=False).filter(~Q(state__in=TERMINAL_RUN_STATES) | Q(completed_at__gte=now - RECENT))
    )
    budgeted = [run.run_id for run in runs if run.budget_usd is not None]
    spent = dict(
        RunUsageBucket.objects.filter(run_id__in=budgeted)
        .order_by()
        .values("run_id")
        .annotate(usd=Sum("cost_usd"))
        .values_list("run_id", "usd")
    )
    raised = 0
    for run in runs:
        common = {"subject": run.run_id, "window_start": run.created_at, "run_id": run.run_id}
        for threshold in RUN_THRESHOLDS:
            if run.tokens_used * 100 >= run.token_cap * threshold:
                message = (
                    f"Run {run.run_id} has used {run.tokens_used:,} tokens of its cap of {run.token_cap:,}: "
                    f"past {threshold}% of it"
                )
                raised += _raised(kind=Alert.Kind.RUN_TOKENS, threshold=threshold, message=message, **common)
            used = spent.get(run.run_id) or Decimal(0)
            if run.budget_usd and used * 100 >= run.budget_usd * threshold:
                message = (
                    f"Run {run.run_id} has spent ${used:,.4f} of its budget of ${run.budget_usd:,.2f}: "
                    f"past {threshold}% of it"
                )
                raised += _raised(kind=Alert.Kind.RUN_BUDGET, threshold=threshold, message=message, **common)
        ends = deadline(run)
        if not run.is_terminal and ends is not None and now >= ends:
            message = f"Run {run.run_id} has reached its time limit of {run.max_duration_minutes:,} minutes"
            raised += _raised(kind=Alert.Kind.RUN_TIME, threshold=100, message=message, **common)
        if run.state in FAILED_RUN_STATES:
            why = f": {run.failure_reason}" if run.failure_reason else ""
            message = f"Run {run.run_id} failed ({run.state}){why}"
            raised += _raised(kind=Alert.Kind.RUN_FAILED, threshold=0, message=message, **common)
    return raised


def _stuck_alerts(now: dt.datetime) -> int:
    raised = 0
    for phase in stuck_phases(now=now):
        raised += _raised(
            kind=Alert.Kind.PHASE_STUCK,
            subject=f"{phase.run_id} {phase.phase_id}",
            threshold=settings.AUTOPACK_STUCK_MINUTES,
            window_start=phase.quiet_since,
            message=phase.describe(),
            run_id=phase.run_id,
            phase_id=phase.phase_id,
        )
    return raised


def _raised(**alert) -> int:
    return 1 if raise_alert(**alert) is not None else 0


@task()
def sweep_alerts(due: str | None = None) -> int:
    """Raise the alerts now due. The sweep due at `due` then queues the next; one without `due` is a one-off."""
    if due is None:
        return raise_due_alerts()
    with transaction.atomic():
        SweepSchedule.objects.get_or_create(pk=1)
        # Lock the schedule: a stray sweep and the chain's own may run at once on two workers.
        schedule = SweepSchedule.objects.select_for_update().get(pk=1)
        if schedule.next_at is None or schedule.next_at != dt.datetime.fromisoformat(due):
            return 0
        try:
            # A savepoint: a sweep that fails still queues the next, so the chain outlives a bad minute.
            with transaction.atomic():
                raised = raise_due_alerts()
        except Exception:
            logger.exception("The sweep failed; the next one is queued all the same")
            raised = 0
        _schedule_next(schedule, clock.now() + dt.timedelta(seconds=settings.AUTOPACK_SWEEP_SECONDS))
    return raised


def start_sweeping() -> bool:
    """Start the chain of sweeps, the first one now, unless a chain is alive; True when it started one."""
    with transaction.atomic():
        SweepSchedule.objects.get_or_create(pk=1)
        schedule = SweepSchedule.objects.select_for_update().get(pk=1)
        now = clock.now()
        stale = now - dt.timedelta(seconds=STALE_INTERVALS * settings.AUTOPACK_SWEEP_SECONDS)
        if schedule.next_at is not None and schedule.next_at > stale:
            return False
        _schedule_next(schedule, now)
    return True


def _schedule_next(schedule: SweepSchedule, at: dt.datetime) -> None:
    backend = sweep_alerts.get_backend()
    # A backend that cannot defer (the immediate one) would sweep again at once, forever: no chain there.
    if not backend.supports_defer:
        return
    schedule.next_at = at
    schedule.save(update_fields=["next_at"])
    due = at.isoformat()
    transaction.on_commit(lambda: sweep_alerts.using(run_after=at).enqueue(due=due))
