"""Validation of one usage event: exact token fields, normalised from the providers' shapes."""

import datetime as dt
import operator
import re
from dataclasses import dataclass
from decimal import Decimal

from autopack_site.limits import IDENTIFIER, IDENTIFIER_RULE, MAX_TOKENS
from routing.catalog import canonical_provider
from routing.config import ModelInfo

ROLE = re.compile(r"^(builder|auditor|agent:[A-Za-z0-9_.\-]{1,80})$")
STATUSES = ("ok", "error")
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
TOKEN_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_prompt_tokens",
    "reasoning_tokens",
)
# What identifies a call for idempotency: a replay must repeat these; latency, price and time may differ.
FIGURES = ("provider", "model", "role", "run_id", "phase_id", *TOKEN_FIELDS, "status")
_figures_of = operator.attrgetter(*FIGURES)
# The fields a caller reports for one call, in the order files and exports list them.
REPORTED_FIELDS = (
    "provider",
    "model",
    "role",
    "run_id",
    "phase_id",
    *TOKEN_FIELDS,
    "latency_ms",
    "status",
    "request_id",
)


class EventInvalid(Exception):
    def __init__(self, details: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in details.items()))
        self.details = details


@dataclass(slots=True)
class UsageEvent:
    provider: str
    model: str
    role: str
    run_id: str
    phase_id: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int
    cached_prompt_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    latency_ms: int | None
    status: str
    request_id: str | None
    created_at: dt.datetime
    # The router's decision (model asked for, model used, why, quota figures); not part of the figures.
    decision: dict | None = None
    # Set only by the demo loader, never from a request: see LlmUsageEvent.is_demo.
    is_demo: bool = False

    def figures(self) -> tuple:
        """What must match for a replay with the same request_id to count as the same event."""
        return _figures_of(self)


def _text(data, key, errors, *, required=False, max_length=200, default=""):
    value = data.get(key)
    # The common case first: this runs for every line of large files.
    if type(value) is str and 0 < len(value) <= max_length:
        return value
    if value is None or value == "":
        if required:
            errors[key] = "is required"
        return default
    if not isinstance(value, str):
        errors[key] = "must be a string"
        return default
    if len(value) > max_length:
        errors[key] = f"may be at most {max_length} characters"
        return default
    return value


def _count(data, key, errors):
    value = data.get(key)
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[key] = "must be an integer"
        return None
    if not 0 <= value <= MAX_TOKENS:
        errors[key] = f"must be between 0 and {MAX_TOKENS}"
        return None
    return value


def _moment(data, errors, now: dt.datetime) -> dt.datetime:
    raw = data.get("created_at", data.get("at"))
    if raw is None:
        return now
    if not isinstance(raw, str):
        errors["created_at"] = "must be an ISO-8601 date and time"
        return now
    try:
        moment = dt.datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        errors["created_at"] = "must be an ISO-8601 date and time"
        return now
    if moment < EARLIEST:
        errors["created_at"] = f"is before {EARLIEST:%Y}"
    elif moment > now + FUTURE_TOLERANCE:
        errors["created_at"] = "is in the future"
    return moment


def normalise_tokens(data: dict) -> dict:
    """Anthropic reports cache reads and writes outside `input_tokens`; fold them into prompt_tokens."""
    if "input_tokens" not in data and "output_tokens" not in data:
        return data
    out = dict(data)
    parts = [data.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    if all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
        out.setdefault("prompt_tokens", sum(p or 0 for p in parts) if parts[0] is not None else None)
        out.setdefault("cached_prompt_tokens", parts[1] or 0)
    out.setdefault("completion_tokens", data.get("output_tokens"))
    return out


def parse_event(data, *, catalog: dict[str, ModelInfo], now: dt.datetime) -> UsageEvent:
    """Check one event and price it; raises EventInvalid naming every field at fault."""
    if not isinstance(data, dict):
        raise EventInvalid({"event": "must be a JSON object"})
    data = normalise_tokens(data)
    errors: dict[str, str] = {}
    model = _text(data, "model", errors, required=True, max_length=100)
    info = catalog.get(model)
    provider = _text(data, "provider", errors, max_length=50)
    if provider:
        provider = canonical_provider(provider)
        if info is not None and provider != info.provider:
            errors["provider"] = f"{model} is served by {info.provider}, not {provider}"
    elif info is not None:
        provider = info.provider
    elif "provider" not in errors and model:
        errors["provider"] = "is required for a model outside the catalog"
    role = _text(data, "role", errors, required=True, max_length=100)
    if role and not ROLE.match(role):
        errors["role"] = "must be builder, auditor or agent:<name>"
    prompt, completion = _count(data, "prompt_tokens", errors), _count(data, "completion_tokens", errors)
    total = _count(data, "total_tokens", errors)
    cached = _count(data, "cached_prompt_tokens", errors) or 0
    reasoning = _count(data, "reasoning_tokens", errors) or 0
    if prompt is not None and completion is not None:
        if total is not None and total != prompt + completion:
            errors["total_tokens"] = f"must equal prompt_tokens + completion_tokens ({prompt + completion})"
        total = prompt + completion
    elif total is None and not errors.keys() & set(TOKEN_FIELDS):
        errors["total_tokens"] = "is required unless prompt_tokens and completion_tokens are both given"
    elif total is not None and total < (prompt or 0) + (completion or 0):
        errors["total_tokens"] = "is less than the parts given"
    if prompt is None and cached:
        errors["cached_prompt_tokens"] = "needs prompt_tokens"
    elif prompt is not None and cached > prompt:
        errors["cached_prompt_tokens"] = "may not exceed prompt_tokens (which include cached tokens)"
    if completion is None and reasoning:
        errors["reasoning_tokens"] = "needs completion_tokens"
    elif completion is not None and reasoning > completion:
        errors["reasoning_tokens"] = "may not exceed completion_tokens (which include reasoning tokens)"
    latency = _count(data, "latency_ms", errors)
    if latency is not None and latency > 2**31 - 1:
        errors["latency_ms"] = "is too large"
    status = _text(data, "status", errors, default="ok", max_length=10)
    if status not in STATUSES:
        errors["status"] = "must be ok or error"
    request_id = _text(data, "request_id", errors, default=None)
    run_id = _text(data, "run_id", errors)
    phase_id = _text(data, "phase_id", errors, max_length=100)
    # The same rule as the runs API, so every recorded id can name a run page.
    for key, value in (("run_id", run_id), ("phase_id", phase_id)):
        if value and not IDENTIFIER.fullmatch(value):
            errors[key] = IDENTIFIER_RULE
    created_at = _moment(data, errors, now)
    decision = data.get("decision")
    if decision is not None and not isinstance(decision, dict):
        errors["decision"] = "must be a JSON object"
    if errors:
        raise EventInvalid(errors)
    cost = None
    if info is not None and prompt is not None and completion is not None:
        cost = info.cost(prompt=prompt, completion=completion, cached=cached).quantize(Decimal("1e-10"))
    return UsageEvent(
        provider,
        model,
        role,
        run_id,
        phase_id,
        prompt,
        completion,
        total,
        cached,
        reasoning,
        cost,
        latency,
        status,
        request_id,
        created_at,
        decision,
    )
