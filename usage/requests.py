"""POST /api/usage: one event, or {"events": [...]}, as pydantic models.

The models check each field's type and bounds. `usage.events.parse_event` then checks what needs
the catalog and the clock (the model's provider, token sums, the time) and prices the event. The
file import (`record_usage`) goes straight to parse_event: its hand-written parser is the fast path
for files of millions of lines.
"""

from typing import Annotated, Any

from pydantic import Field

from autopack_site.contract import RequestModel, choice, integer, text, validate_body
from autopack_site.limits import IDENTIFIER, INT_MAX, KEY_CHARS, MAX_TOKENS, MAX_USAGE_EVENTS, NAME_CHARS
from usage.events import ROLE, STATUSES

Tokens = integer(maximum=MAX_TOKENS)


def optional_id(max_length: int) -> Any:
    """A run or phase id, or blank: a call made outside any run names none."""
    return Annotated[text(max_length), Field(json_schema_extra={"pattern": f"^({IDENTIFIER.pattern})?$"})]


class UsageEventIn(RequestModel):
    """One LLM call. prompt_tokens count all input (cached included), completion_tokens all output."""

    model: text(KEY_CHARS)
    role: Annotated[text(KEY_CHARS), Field(json_schema_extra={"pattern": ROLE.pattern})]
    provider: Annotated[text(50), Field(description="defaults to the catalog's provider")] = ""
    run_id: optional_id(NAME_CHARS) = ""
    phase_id: optional_id(KEY_CHARS) = ""
    prompt_tokens: Tokens | None = None
    completion_tokens: Tokens | None = None
    total_tokens: Tokens | None = None
    cached_prompt_tokens: Tokens | None = None
    reasoning_tokens: Tokens | None = None
    # Anthropic's shape: cache reads and writes outside input_tokens.
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cache_read_input_tokens: Tokens | None = None
    cache_creation_input_tokens: Tokens | None = None
    latency_ms: integer(maximum=INT_MAX) | None = None
    status: choice(STATUSES) = STATUSES[0]
    request_id: text(NAME_CHARS) | None = None
    created_at: Annotated[text(64), Field(json_schema_extra={"format": "date-time"})] | None = None
    decision: dict[str, Any] | None = None


class UsageBatch(RequestModel):
    events: Annotated[list[UsageEventIn], Field(min_length=1, max_length=MAX_USAGE_EVENTS)]


def parse_ingest(body) -> list[dict]:
    """The events of an ingest body, checked field by field; each still a dict for parse_event."""
    if isinstance(body, dict) and "events" in body:
        validate_body(UsageBatch, body, "Invalid usage events")
        return body["events"]
    validate_body(UsageEventIn, body, "Invalid usage event")
    return [body]
