"""A run's budgets, enforced before each LLM call: its pause flag, token cap, duration and dollar budget.

Before a call starts, `reserve_call` locks the run, refuses the call when the run is finished, paused
or has reached a limit, and otherwise holds the call's estimated prompt tokens plus its output limit,
and their price, against the run. A call starts only while what the run has used plus what calls in
flight hold is below each limit, so concurrent calls overshoot a limit by less than one call's
reservation (when the provider keeps to max_tokens and the prompt estimate). After the call,
`settle` drops the reservation in the transaction that records the real usage; a failed call drops
it too. A run whose settled figures reached a limit finishes as DONE_FAILED_BUDGET_EXHAUSTED.
"""

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from autopack_site import clock
from routing.config import ModelInfo
from runs.models import Run, RunReservation
from runs.progress import level_for
from runs.services import end_run_over_budget
from usage.models import RunUsageBucket

# Characters per token of an English or code prompt, and what each message adds (role, separators):
# an estimate, made without the provider's tokenizer, that the settled figures correct.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
# The output limit held for a model the catalog gives none for.
DEFAULT_OUTPUT_TOKENS = 4096
# A reservation outlives its call's timeout by this much before a dead process's hold is ignored.
HOLD_GRACE_SECONDS = 60
WHO = "LlmService"


class RunRefused(Exception):
    """LlmService will not call a provider for this run now; nothing was sent and nothing recorded."""

    def __init__(self, run_id: str, message: str):
        super().__init__(message)
        self.run_id = run_id


class RunPaused(RunRefused):
    """The run is paused; its calls go through again once it is resumed."""


class RunFinished(RunRefused):
    """The run is finished (cancelled, out of budget, or done): it takes no more calls."""


class BudgetExhausted(RunRefused):
    """A limit of the run is reached, or would be by the calls in flight; the message names it and the figures."""


@dataclass(frozen=True)
class Reservation:
    pk: int
    run_id: str
    tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class Held:
    """What a run has spent in dollars, and what calls in flight hold, in tokens and dollars."""

    spent_usd: Decimal
    held_tokens: int
    held_usd: Decimal


def estimate_prompt_tokens(messages: list[dict]) -> int:
    """Tokens a prompt will take, from its length: the reservation's input half."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)


def reservation_size(model: ModelInfo | None, messages: list[dict], max_tokens: int | None) -> tuple[int, Decimal]:
    """The tokens and dollars a call may use at most: its prompt estimate plus its output limit, priced uncached."""
    prompt = estimate_prompt_tokens(messages)
    output = max_tokens or (model.max_output_tokens if model else None) or DEFAULT_OUTPUT_TOKENS
    cost = model.cost(prompt=prompt, completion=output, cached=0) if model else Decimal(0)
    return prompt + output, cost


def reserve_call(
    *, run_id: str | None, model: ModelInfo | None, messages: list[dict], max_tokens: int | None, timeout: float
) -> Reservation | None:
    """Hold a call's tokens and price against its run, or raise RunRefused saying why it may not start.

    No run (or a run not started yet: planning calls) holds nothing. A refusal because the run's
    settled figures reached a limit first finishes the run as DONE_FAILED_BUDGET_EXHAUSTED.
    """
    if not run_id:
        return None
    tokens, cost = reservation_size(model, messages, max_tokens)
    with transaction.atomic():
        # Lock the run row: concurrent calls of one run take their turn to look and hold.
        run = Run.objects.select_for_update().filter(run_id=run_id).first()
        if run is None:
            return None
        now = clock.now()
        refusal, reached = _refusal(run, now, held_against(run, now))
        if refusal is None:
            row = RunReservation.objects.create(
                run=run,
                tokens=tokens,
                cost_usd=cost,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=timeout + HOLD_GRACE_SECONDS),
            )
            return Reservation(row.pk, run_id, tokens, cost)
        if reached:
            end_run_over_budget(run_id=run_id, actor=WHO, reason=str(refusal))
    raise refusal


def settle(reservation: Reservation | None) -> None:
    """Drop a call's hold: its real usage (recorded in the same transaction, if any) counts instead."""
    if reservation is not None:
        RunReservation.objects.filter(pk=reservation.pk).delete()


def held_against(run: Run, now) -> Held:
    """The run's spend in dollars (its recorded calls, priced) and the live holds of calls in flight."""
    holds = RunReservation.objects.filter(run=run, expires_at__gt=now).aggregate(
        tokens=Sum("tokens"), usd=Sum("cost_usd")
    )
    spent = Decimal(0)
    if run.budget_usd is not None:
        spent = RunUsageBucket.objects.filter(run_id=run.run_id).aggregate(usd=Sum("cost_usd"))["usd"] or Decimal(0)
    return Held(spent_usd=spent, held_tokens=holds["tokens"] or 0, held_usd=holds["usd"] or Decimal(0))


def deadline(run: Run) -> dt.datetime | None:
    """When the run reaches max_duration_minutes: counted from its start, so a run not started has none yet."""
    if run.started_at is None:
        return None
    return run.started_at + dt.timedelta(minutes=run.max_duration_minutes)


def _refusal(run: Run, now, held: Held) -> tuple[RunRefused | None, bool]:
    """Why a call of this run may not start now, and whether the run's own figures reached a limit."""
    name = run.run_id
    if run.is_terminal:
        why = f": {run.failure_reason}" if run.failure_reason else ""
        return RunFinished(name, f"Run '{name}' is finished ({run.state}{why}); it takes no more calls"), False
    if run.is_paused:
        why = f": {run.pause_reason}" if run.pause_reason else ""
        return RunPaused(
            name, f"Run '{name}' is paused by {run.paused_by or 'someone'}{why}; resume it to go on"
        ), False
    ends = deadline(run)
    if ends is not None and now >= ends:
        minutes = (now - run.started_at).total_seconds() / 60
        message = (
            f"max_duration_minutes reached: the run has been running {minutes:,.1f} minutes "
            f"of its {run.max_duration_minutes:,}"
        )
        return BudgetExhausted(name, message), True
    if run.tokens_used >= run.token_cap:
        message = f"token_cap reached: {run.tokens_used:,} tokens used of a cap of {run.token_cap:,}"
        return BudgetExhausted(name, message), True
    if run.tokens_used + held.held_tokens >= run.token_cap:
        message = (
            f"token_cap would be reached: {run.tokens_used:,} tokens used and {held.held_tokens:,} held by calls "
            f"in flight, of a cap of {run.token_cap:,}; try again when they finish"
        )
        return BudgetExhausted(name, message), False
    if run.budget_usd is not None:
        if held.spent_usd >= run.budget_usd:
            message = f"budget_usd reached: ${held.spent_usd:,.4f} spent of a budget of ${run.budget_usd:,.2f}"
            return BudgetExhausted(name, message), True
        if held.spent_usd + held.held_usd >= run.budget_usd:
            message = (
                f"budget_usd would be reached: ${held.spent_usd:,.4f} spent and ${held.held_usd:,.4f} held by calls "
                f"in flight, of a budget of ${run.budget_usd:,.2f}; try again when they finish"
            )
            return BudgetExhausted(name, message), False
    return None, False


@dataclass(frozen=True)
class Limit:
    """One of a run's limits as the run page shows it: what is used, what is left, and when it runs out."""

    name: str
    unit: str
    used: Decimal | int | float
    limit: Decimal | int | float | None
    held: Decimal | int = 0
    # When the limit is reached at the run's burn rate since it started; None without a rate or a limit.
    forecast: dt.datetime | None = None

    @property
    def left(self):
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> float:
        return round(100.0 * float(self.used) / float(self.limit), 1) if self.limit else 0.0

    @property
    def level(self) -> str:
        return level_for(self.percent)


def run_limits(run: Run) -> list[Limit]:
    """The run's token cap, dollar budget and duration: used, held by calls in flight, left, and forecast."""
    now = clock.now()
    holds = RunReservation.objects.filter(run=run, expires_at__gt=now).aggregate(
        tokens=Sum("tokens"), usd=Sum("cost_usd")
    )
    spent = RunUsageBucket.objects.filter(run_id=run.run_id).aggregate(usd=Sum("cost_usd"))["usd"] or Decimal(0)
    end = run.completed_at or now
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    running = not run.is_terminal and elapsed > 0

    def forecast(used, limit):
        # The burn rate since the run started, carried forward.
        if not running or limit is None or not used or used >= limit:
            return None
        return now + dt.timedelta(seconds=elapsed * float(limit - used) / float(used))

    minutes = elapsed / 60
    return [
        Limit(
            "token_cap",
            "tokens",
            run.tokens_used,
            run.token_cap,
            holds["tokens"] or 0,
            forecast(run.tokens_used, run.token_cap),
        ),
        Limit(
            "budget_usd", "dollars", spent, run.budget_usd, holds["usd"] or Decimal(0), forecast(spent, run.budget_usd)
        ),
        Limit(
            "max_duration_minutes",
            "minutes",
            round(minutes, 1),
            run.max_duration_minutes,
            forecast=deadline(run) if not run.is_terminal else None,
        ),
    ]
