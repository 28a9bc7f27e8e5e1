"""Validation of one usage event: exact token fields, normalised from the providers' shapes."""

import datetime as dt
import functools
import operator
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

import msgspec

from autopack_site.limits import IDENTIFIER, IDENTIFIER_RULE, INT_MAX, KEY_CHARS, MAX_TOKENS, NAME_CHARS
from routing.catalog import canonical_provider
from routing.config import ModelInfo

ROLE = re.compile(r"^(builder|auditor|agent:[A-Za-z0-9_.\-]{1,80})$")
STATUSES = ("ok", "error")
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
# The longest text each field may hold, in characters.
LENGTHS = {
    "model": KEY_CHARS,
    "role": KEY_CHARS,
    "provider": 50,
    "run_id": NAME_CHARS,
    "phase_id": KEY_CHARS,
    "status": 10,
    "request_id": NAME_CHARS,
}
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


def _bounded_text(field: str):
    """A reported text field as parse_event bounds it; an empty one counts as not sent."""
    return Annotated[str, msgspec.Meta(min_length=1, max_length=LENGTHS[field])]


Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]


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
    # The key or person that sent the batch: see LlmUsageEvent.sent_by.
    sent_by: str = ""

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


def _moment(raw, errors, now: dt.datetime) -> dt.datetime:
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


class Reported(msgspec.Struct, forbid_unknown_fields=True):
    """A usage file's common line, typed: decoded and bounded by msgspec in one step, unknown keys refused.

    Any line it cannot take as it is (another key, a value out of bounds, a blank, an escape) goes the
    whole way through parse_json and parse_event instead, which name what is wrong.
    """

    model: _bounded_text("model") | None = None
    role: _bounded_text("role") | None = None
    provider: _bounded_text("provider") | None = None
    run_id: _bounded_text("run_id") | None = None
    phase_id: _bounded_text("phase_id") | None = None
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    total_tokens: Count | None = None
    cached_prompt_tokens: Count | None = None
    reasoning_tokens: Count | None = None
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)] | None = None
    status: _bounded_text("status") | None = None
    request_id: _bounded_text("request_id") | None = None
    created_at: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


_LINE = msgspec.json.Decoder(Reported)


def parse_line(line: bytes, *, catalog: dict[str, ModelInfo], now: dt.datetime) -> UsageEvent | None:
    """One usage file line the quick way, or None when only the full parse can tell what it holds.

    The same checks as parse_event, so a line gives the same event (or the same error) either way.
    Only an escape can carry a NUL or a lone surrogate into a string, so lines with one go the full way.
    """
    if b"\\u" in line:
        return None
    try:
        reported = _LINE.decode(line)
    except msgspec.MsgspecError:
        return None
    if reported.model is None or reported.role is None:
        return None
    if reported.request_id is None and reported.created_at is None:
        # The import must refuse such a line by what it lacks, which only the full parse tells.
        return None
    return _checked(reported, None, {}, catalog=catalog, now=now)


def parse_event(data, *, catalog: dict[str, ModelInfo], now: dt.datetime) -> UsageEvent:
    """Check one event and price it; raises EventInvalid naming every field at fault."""
    if not isinstance(data, dict):
        raise EventInvalid({"event": "must be a JSON object"})
    data = normalise_tokens(data)
    errors: dict[str, str] = {}
    reported = Reported(
        model=_text(data, "model", errors, required=True, max_length=LENGTHS["model"]),
        provider=_text(data, "provider", errors, max_length=LENGTHS["provider"]),
        role=_text(data, "role", errors, required=True, max_length=LENGTHS["role"]),
        run_id=_text(data, "run_id", errors, max_length=LENGTHS["run_id"]),
        phase_id=_text(data, "phase_id", errors, max_length=LENGTHS["phase_id"]),
        prompt_tokens=_count(data, "prompt_tokens", errors),
        completion_tokens=_count(data, "completion_tokens", errors),
        total_tokens=_count(data, "total_tokens", errors),
        cached_prompt_tokens=_count(data, "cached_prompt_tokens", errors),
        reasoning_tokens=_count(data, "reasoning_tokens", errors),
        latency_ms=_count(data, "latency_ms", errors),
        status=_text(data, "status", errors, default="ok", max_length=LENGTHS["status"]),
        request_id=_text(data, "request_id", errors, default=None, max_length=LENGTHS["request_id"]),
        created_at=data.get("created_at", data.get("at")),
    )
    decision = data.get("decision")
    if decision is not None and not isinstance(decision, dict):
        errors["decision"] = "must be a JSON object"
    return _checked(reported, decision, errors, catalog=catalog, now=now)


# A file repeats its runs, phases and roles on thousands of lines: each is matched once.
@functools.lru_cache(maxsize=4096)
def _is_identifier(value: str) -> bool:
    return IDENTIFIER.fullmatch(value) is not None


@functools.lru_cache(maxsize=1024)
def _is_role(value: str) -> bool:
    return ROLE.match(value) is not None


def _checked(
    reported: Reported, decision: dict | None, errors: dict[str, str], *, catalog: dict[str, ModelInfo], now
) -> UsageEvent:
    """What both parses share once each field has its type: the rules across fields, the time, the price."""
    model, provider, role = reported.model or "", reported.provider or "", reported.role or ""
    info = catalog.get(model)
    if provider:
        provider = canonical_provider(provider)
        if info is not None and provider != info.provider:
            errors["provider"] = f"{model} is served by {info.provider}, not {provider}"
    elif info is not None:
        provider = info.provider
    elif "provider" not in errors and model:
        errors["provider"] = "is required for a model outside the catalog"
    if role and not _is_role(role):
        errors["role"] = "must be builder, auditor or agent:<name>"
    prompt, completion, total = reported.prompt_tokens, reported.completion_tokens, reported.total_tokens
    cached, reasoning = reported.cached_prompt_tokens or 0, reported.reasoning_tokens or 0
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
    latency = reported.latency_ms
    if latency is not None and latency > INT_MAX:
        errors["latency_ms"] = "is too large"
    status = reported.status or "ok"
    if status not in STATUSES:
        errors["status"] = "must be ok or error"
    run_id, phase_id = reported.run_id or "", reported.phase_id or ""
    # The same rule as the runs API, so every recorded id can name a run page.
    for key, value in (("run_id", run_id), ("phase_id", phase_id)):
        if value and not _is_identifier(value):
            errors[key] = IDENTIFIER_RULE
    created_at = _moment(reported.created_at, errors, now)
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
        reported.request_id,
        created_at,
        decision,
    )
