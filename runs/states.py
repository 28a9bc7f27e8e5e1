"""Autopack's run, tier and phase states, spelled exactly as the executor sends them."""

from django.db import models

# Complexities are keys of the routing table, so routing.config holds the one list.
from routing.config import COMPLEXITIES as COMPLEXITIES


class RunState(models.TextChoices):
    PLAN_BOOTSTRAP = "PLAN_BOOTSTRAP"
    RUN_CREATED = "RUN_CREATED"
    PHASE_QUEUEING = "PHASE_QUEUEING"
    PHASE_EXECUTION = "PHASE_EXECUTION"
    GATE = "GATE"
    CI_RUNNING = "CI_RUNNING"
    SNAPSHOT_CREATED = "SNAPSHOT_CREATED"
    DONE_SUCCESS = "DONE_SUCCESS"
    DONE_FAILED_BUDGET_EXHAUSTED = "DONE_FAILED_BUDGET_EXHAUSTED"
    DONE_FAILED_POLICY_VIOLATION = "DONE_FAILED_POLICY_VIOLATION"
    DONE_FAILED_REQUIRES_HUMAN_REVIEW = "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    DONE_FAILED_ENVIRONMENT = "DONE_FAILED_ENVIRONMENT"


class PhaseState(models.TextChoices):
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    GATE = "GATE"
    CI_RUNNING = "CI_RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class TierState(models.TextChoices):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


TERMINAL_RUN_STATES = frozenset(s for s in RunState.values if s.startswith("DONE_"))
# What an executor may set on a run itself; the rest are derived from its phases.
EXECUTOR_RUN_STATES = frozenset(
    {
        RunState.PHASE_QUEUEING,
        RunState.PHASE_EXECUTION,
        RunState.GATE,
        RunState.CI_RUNNING,
        RunState.SNAPSHOT_CREATED,
        RunState.DONE_FAILED_BUDGET_EXHAUSTED,
        RunState.DONE_FAILED_POLICY_VIOLATION,
        RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
        RunState.DONE_FAILED_ENVIRONMENT,
    }
)
FINISHED_PHASE_STATES = frozenset({PhaseState.COMPLETE, PhaseState.FAILED, PhaseState.SKIPPED})
DONE_PHASE_STATES = frozenset({PhaseState.COMPLETE, PhaseState.SKIPPED})
RUNNING_PHASE_STATES = frozenset({PhaseState.EXECUTING, PhaseState.GATE, PhaseState.CI_RUNNING})
REOPEN_PHASE_STATES = frozenset({PhaseState.QUEUED, PhaseState.EXECUTING})
FINISHED_TIER_STATES = frozenset({TierState.COMPLETE, TierState.FAILED, TierState.SKIPPED})
DONE_TIER_STATES = frozenset({TierState.COMPLETE, TierState.SKIPPED})

SAFETY_PROFILES = ("normal", "safety_critical")
RUN_SCOPES = ("multi_tier", "single_tier")
ISSUE_SEVERITIES = ("minor", "major")
BUILDER_STATUSES = ("success", "failed", "needs_review")
AUDITOR_RECOMMENDATIONS = ("approve", "revise", "escalate")

# A run's caps when the executor names none.
DEFAULT_SAFETY_PROFILE = "normal"
DEFAULT_RUN_SCOPE = "multi_tier"
DEFAULT_TOKEN_CAP = 5_000_000
DEFAULT_MAX_PHASES = 25
DEFAULT_MAX_DURATION_MINUTES = 120

# A person's moves on a run (a flag for pause, a finish for cancel) and on a phase: each phase action
# applies to phases in the states given and moves them to the last.
PAUSE, RESUME, CANCEL = "pause", "resume", "cancel"
RUN_ACTIONS = (PAUSE, RESUME, CANCEL)
RETRY, SKIP, APPROVE = "retry", "skip", "approve"
PHASE_ACTIONS = {
    RETRY: ((PhaseState.FAILED,), PhaseState.QUEUED),
    SKIP: ((PhaseState.QUEUED, PhaseState.FAILED), PhaseState.SKIPPED),
    APPROVE: ((PhaseState.GATE,), PhaseState.COMPLETE),
}
# What a run's history calls a state change nobody asked for by name (a report, a derived move).
STATE_CHANGE = "state"
# Who moved a run when no person did: the executor's reports, and what the server derives from them.
EXECUTOR, SERVER = "executor", "server"
# What an executor polling GET /runs/{run_id}/control is told to do.
DIRECTIVES = ("continue", "pause", "stop")

# The colour levels of a usage bar, as runs.progress.level_for names them.
USAGE_LEVELS = ("ok", "warning", "danger", "exceeded")
