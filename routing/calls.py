"""The one path of every LLM call: LlmService and the OpenAI-compatible gateway both go through `place_call`.

    answer = place_call(Call(api=CHAT, body={"messages": messages}, role="builder", ...), timeout=120)

A call is routed (or names its catalog model), passes its run's checks and holds its reservation
(routing.budgets), carries the people's pending notes in its system prompt (or instructions), and is
sent with the official openai SDK. Every attempt is recorded with its exact usage and the router's
decision under a request id of its own, so a retried call never counts twice. A 429, a 5xx, a
timeout, a refused connection or a malformed answer puts the provider in a cooldown kept in the
database and a non-critical call moves down its fallback chain; critical categories never fall back,
and wait for a cooldown that ends within the call's timeout rather than hammer the provider.

The request body travels as the caller wrote it, but for the model chosen, the notes, and (when
streamed) the request for usage in the last chunk; the provider's answer comes back as it was sent.
"""

import contextlib
import functools
import itertools
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2
import openai
from django.db import transaction

from autopack_site import clock
from notes.services import mark_delivered, notes_prompt, pending_notes
from routing.budgets import reserve_call, settle
from routing.config import GENERAL, ConfigError, get_config
from routing.quotas import provider_states
from routing.router import Decision, RoutingError, select, select_model
from routing.services import put_in_cooldown
from runs.models import Phase
from usage.recording import record_usage_events

CHAT, RESPONSES = "chat", "responses"
PATHS = {CHAT: "/chat/completions", RESPONSES: "/responses"}


class LlmError(Exception):
    """The call failed and was not retried further; the message says why and where."""


class ProviderRefused(LlmError):
    """The provider refused the request itself (a 4xx other than 429): its answer, as it sent it."""

    def __init__(self, message: str, *, status: int, content: bytes, content_type: str):
        super().__init__(message)
        self.status, self.content, self.content_type = status, content, content_type


class ProviderCoolingDown(LlmError):
    """A critical call's provider cools down past the call's timeout: failed at once, nothing sent."""

    def __init__(self, provider: str, until, category: str):
        self.provider, self.until = provider, until
        self.retry_after = max(1, int((until - clock.now()).total_seconds() + 0.999))
        super().__init__(
            f"{provider} is cooling down until {until:%Y-%m-%d %H:%M:%S} UTC; {category} is never downgraded, "
            f"so the call fails now rather than wait {self.retry_after} s"
        )


class ProviderFailed(LlmError):
    """Every attempt failed (or a critical call's only one did); `timed_out` when the last one timed out."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


@dataclass
class Call:
    """One call as its caller asked for it. `body` is the API's request body without `model`."""

    api: str
    body: dict
    role: str
    category: str | None = None
    complexity: str | None = None
    run_id: str | None = None
    phase_id: str | None = None
    # A catalog model the caller chose by name; None lets the router choose.
    model: str | None = None
    # Who sent the call (the gateway's API key), recorded with the decision.
    caller: str = ""
    stream: bool = False


@dataclass
class Answer:
    """A non-streamed answer: the provider's body as sent, parsed, and what the call did."""

    content: bytes
    data: dict
    content_type: str
    decision: Decision
    request_id: str
    prompt_tokens: int
    completion_tokens: int
    failures: list[str] = field(default_factory=list)


@dataclass
class Streamed:
    """A streamed answer: the provider's bytes as they arrive; usage is recorded when the stream ends."""

    chunks: Iterator[bytes]
    content_type: str
    decision: Decision
    request_id: str
    failures: list[str] = field(default_factory=list)


def place_call(call: Call, *, timeout: float, max_attempts: int = 4) -> Answer | Streamed:
    """Route, check, send, fall back and record one call.

    Raises RunRefused, RoutingError (QuotaExhausted, UnknownModel), ConfigError, or LlmError.
    """
    config = get_config()
    category, complexity = _phase_hints(call)
    critical = (category or GENERAL) in config.routing.never_fallback_categories
    call_id = uuid.uuid4().hex
    notes = pending_notes(call.run_id)
    body = with_notes(call.api, call.body, notes_prompt(notes)) if notes else call.body
    if call.stream and call.api == CHAT:
        # Usage arrives in the last chunk only when asked for.
        body = {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
    failures: list[str] = []
    tried: set[str] = set()
    timed_out = False
    for attempt in range(1, max_attempts + 1):
        try:
            if call.model:
                decision = select_model(call.model, call.role, category, complexity, config=config)
            else:
                decision = select(call.role, category, complexity, run=call.run_id, config=config)
        except RoutingError:
            # After this call's failed attempts the router has no model left (each provider of the chain
            # cools down, or is out of quota): the call failed, and says how.
            if not failures:
                raise
            break
        if decision.model in tried:
            break
        tried.add(decision.model)
        if critical:
            _wait_for_cooldown(decision.provider, category, timeout)
        sending = _Attempt(
            call=call,
            body={"model": decision.model, **body},
            decision=decision,
            request_id=f"{call_id}:{attempt}",
            failures=failures,
            timeout=timeout,
        )
        sending.reservation = reserve_call(
            run_id=call.run_id,
            model=config.model(decision.model),
            messages=prompt_messages(call.api, body),
            max_tokens=_output_limit(body),
            timeout=timeout,
        )
        try:
            result = sending.send()
        except _Retryable as exc:
            settle(sending.reservation)
            failures.append(f"{decision.model}: {exc}")
            timed_out = exc.timed_out
            put_in_cooldown(provider=decision.provider, reason=str(exc), retry_after=exc.retry_after)
            if critical:
                raise ProviderFailed(
                    f"{decision.model} failed ({exc}); {decision.category} is never downgraded, so no fallback",
                    timed_out=exc.timed_out,
                ) from None
            continue
        except BaseException:
            settle(sending.reservation)
            raise
        if notes:
            # Only a call that reached the model has read the notes.
            mark_delivered(notes, call=f"{call.role} call {sending.request_id} ({decision.model})")
        return result
    raise ProviderFailed(
        "every attempt failed: " + "; ".join(failures or ["no model left to try"]), timed_out=timed_out
    )


def with_notes(api: str, body: dict, notes_text: str) -> dict:
    """The body with the people's notes at the end of its system prompt (chat) or instructions (responses)."""
    if api == RESPONSES:
        instructions = body.get("instructions")
        return {**body, "instructions": f"{instructions}\n\n{notes_text}" if instructions else notes_text}
    return {**body, "messages": messages_with_notes(body.get("messages") or [], notes_text)}


def messages_with_notes(messages: list[dict], notes_text: str) -> list[dict]:
    """The messages with the notes at the end of the system prompt (a new one if none)."""
    if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0].get('content', '')}\n\n{notes_text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": notes_text}, *messages]


def prompt_messages(api: str, body: dict) -> list[dict]:
    """What the reservation's prompt estimate reads: chat messages, or a response's instructions and input."""
    if api == CHAT:
        return [m for m in body.get("messages") or [] if isinstance(m, dict)]
    parts = [{"content": body["instructions"]}] if body.get("instructions") else []
    given = body.get("input")
    if isinstance(given, list):
        return parts + [item if isinstance(item, dict) else {"content": item} for item in given]
    return parts + [{"content": given or ""}]


def usage_figures(api: str, usage) -> dict | None:
    """A provider's usage object as our exact token fields; None when it reported none."""
    if not isinstance(usage, dict):
        return None
    names = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
    if api == RESPONSES:
        names = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
    prompt, completion = usage.get(names[0]), usage.get(names[1])
    if not isinstance(prompt, int):
        return None
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion if isinstance(completion, int) else 0,
        "cached_prompt_tokens": _detail(usage, names[2], "cached_tokens"),
        "reasoning_tokens": _detail(usage, names[3], "reasoning_tokens"),
    }


def decision_record(decision: Decision, failures: list[str], **extra) -> dict:
    return {
        "asked_for": decision.chosen_model,
        "used": decision.model,
        "source": decision.source,
        "reasons": decision.reasons,
        "warnings": decision.warnings,
        "quota": decision.quota,
        "failed_attempts": list(failures),
        **extra,
    }


def sdk_client(base_url: str | None, key: str, timeout: float) -> openai.OpenAI:
    """One SDK client per endpoint, key and timeout, kept: building one (its TLS context, its connection
    pool) costs some 30 ms, more than the rest of a routed and recorded call. The clients are thread-safe.

    Built under a lock: a client built twice by two threads at once would see its spare copy garbage
    collected, and a collected client closes its connection pool, streams still reading from it included.
    """
    with _clients_lock:
        return _cached_client(base_url, key, timeout)


@functools.lru_cache(maxsize=32)
def _cached_client(base_url: str | None, key: str, timeout: float) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)


_clients_lock = threading.Lock()


def provider_client(provider: str, timeout: float) -> openai.OpenAI:
    endpoint = get_config().providers.get(provider)
    if endpoint is None:
        raise ConfigError("models.yaml", [(f"providers.{provider}", "no endpoint configured")])
    # The one place that reads the environment directly: keys stay out of settings and files.
    key = os.environ.get(endpoint.api_key_env or "")
    if not key:
        raise LlmError(f"{provider}: set the {endpoint.api_key_env} environment variable to its API key")
    return sdk_client(endpoint.base_url, key, timeout)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, timed_out: bool = False):
        super().__init__(message)
        self.retry_after, self.timed_out = retry_after, timed_out


@dataclass
class _Attempt:
    """One attempt at one model: sent, then recorded (at once, or when its stream ends)."""

    call: Call
    body: dict
    decision: Decision
    request_id: str
    failures: list[str]
    timeout: float
    reservation: object = None
    started: float = 0.0

    def send(self) -> Answer | Streamed:
        client = provider_client(self.decision.provider, self.timeout)
        self.started = time.monotonic()
        try:
            # The SDK's raw request: the body goes as it is, fields the SDK does not know included.
            response = client.post(
                PATHS[self.call.api], cast_to=httpx2.Response, body=self.body, stream=self.call.stream
            )
        except openai.APITimeoutError:
            raise _Retryable(f"timed out after {self.timeout:g} s", timed_out=True) from None
        except openai.APIConnectionError as exc:
            raise _Retryable(f"could not connect ({exc.__cause__ or exc})") from None
        except openai.APIStatusError as exc:
            self._record_error_usage(_json_body(exc.response))
            if exc.status_code == 429 or exc.status_code >= 500:
                raise _Retryable(f"HTTP {exc.status_code}", retry_after=_retry_after(exc.response)) from None
            raise ProviderRefused(
                f"{self.decision.provider} refused {self.decision.model}: HTTP {exc.status_code} {_message(exc)}",
                status=exc.status_code,
                content=exc.response.content,
                content_type=exc.response.headers.get("content-type", "application/json"),
            ) from None
        content_type = response.headers.get("content-type", "application/json")
        if self.call.stream and content_type.startswith("text/event-stream"):
            return self._stream(client, response, content_type)
        data = self._read_json(response)
        if self.call.stream or not _is_answer(self.call.api, data):
            # A 200 that is not the API's answer (a proxy's error page, say) is a failure like a 5xx.
            self._record_error_usage(data)
            raise _Retryable(f"malformed answer: {_malformation(self.call, data, content_type)}")
        figures = usage_figures(self.call.api, data.get("usage") if isinstance(data, dict) else None)
        figures = figures or {"prompt_tokens": 0, "completion_tokens": 0}
        self._settle_with(figures)
        return Answer(
            response.content,
            data,
            content_type,
            self.decision,
            self.request_id,
            figures["prompt_tokens"],
            figures["completion_tokens"],
            self.failures,
        )

    @contextlib.contextmanager
    def _reading(self, response, broke_off: str):
        """A body that stalls or breaks off while it is read fails the attempt, which then falls back."""
        try:
            yield
        except httpx2.TimeoutException:
            response.close()
            raise _Retryable(f"timed out after {self.timeout:g} s", timed_out=True) from None
        except httpx2.TransportError as exc:
            response.close()
            raise _Retryable(f"{broke_off} ({exc})") from None

    def _read_json(self, response):
        """The provider's whole body as JSON (None when it is not)."""
        with self._reading(response, "broke off"):
            response.read()
        return _json_body(response)

    def _stream(self, client: openai.OpenAI, response, content_type: str) -> Streamed:
        chunks = response.iter_bytes()
        # A provider that fails before its first byte falls back like any failed call.
        with self._reading(response, "broke off before its first byte"):
            first = next(chunks, b"")
        chunks = self._relay(client, response, first, chunks)
        return Streamed(chunks, content_type, self.decision, self.request_id, self.failures)

    def _relay(self, client: openai.OpenAI, response, first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The provider's bytes on to the client, with the usage recorded as soon as the provider reports
        it (before those bytes go on, so a client that has read the usage finds it recorded), or when the
        stream ends without it. `client` is held until the stream ends: a client collected sooner (pushed
        out of the cache) would close the stream's connection.
        """
        reader = _UsageReader(self.call.api)
        recorded = ended = False

        def settle_with(figures, **extra):
            nonlocal recorded
            recorded = True
            if figures is not None:
                self._settle_with(figures, **extra)
            else:
                self._settle_with({"prompt_tokens": 0, "completion_tokens": 0}, status="error", incomplete=True)

        try:
            for chunk in itertools.chain((first,), chunks):
                reader.feed(chunk)
                if reader.usage is not None and not recorded:
                    settle_with(usage_figures(self.call.api, reader.usage))
                yield chunk
            ended = True
        except GeneratorExit:
            # The client went away: read on to the provider's end, for the usage it reports there.
            try:
                for chunk in chunks:
                    reader.feed(chunk)
            except httpx2.HTTPError:
                pass
            raise
        except httpx2.HTTPError:
            # The provider broke off mid-stream: its bytes are with the client, nothing left to fall back.
            pass
        finally:
            response.close()
            if not recorded:
                settle_with(usage_figures(self.call.api, reader.usage), **({} if ended else {"incomplete": True}))

    def _record_error_usage(self, body) -> None:
        """A failed call still cost tokens when the provider says so."""
        body = body if isinstance(body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        usage = body.get("usage") or error.get("usage")
        figures = usage_figures(CHAT, usage) or usage_figures(RESPONSES, usage)
        if figures is not None:
            self._settle_with(figures, status="error")
        else:
            settle(self.reservation)

    def _settle_with(self, figures: dict, **extra) -> None:
        """Record the attempt's usage in place of its hold on the run, if any."""
        if self.reservation is None:
            # Nothing held: the recording is one transaction of its own.
            self._record(figures, **extra)
            return
        # The real usage replaces the hold in one transaction: never both counted, never neither.
        with transaction.atomic():
            self._record(figures, **extra)
            settle(self.reservation)

    def _record(self, figures: dict, *, status: str = "ok", **extra) -> None:
        """Record this attempt's usage under its own request id, with the router's decision."""
        event = {
            "provider": self.decision.provider,
            "model": self.decision.model,
            "role": self.decision.role,
            "run_id": self.call.run_id or "",
            "phase_id": self.call.phase_id or "",
            "request_id": self.request_id,
            "decision": decision_record(self.decision, self.failures, **extra),
            "latency_ms": int((time.monotonic() - self.started) * 1000),
            "status": status,
            **figures,
        }
        record_usage_events([event], atomic_batch=True, sent_by=self.call.caller, new_ids=True)


class _UsageReader:
    """Reads the usage a provider reports in its server-sent events, as the bytes pass by."""

    # Chat chunks carry "usage": null until the last; responses report it in their final event.
    FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self, api: str):
        self.api = api
        self.pending = b""
        self.usage = None

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line and b'"usage":null' not in line.replace(b" ", b""):
                self._read(line[5:])

    def _read(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if self.api == CHAT and isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        elif self.api == RESPONSES and event.get("type") in self.FINAL_EVENTS:
            answer = event.get("response")
            if isinstance(answer, dict) and isinstance(answer.get("usage"), dict):
                self.usage = answer["usage"]


def _phase_hints(call: Call) -> tuple[str | None, str | None]:
    """The call's category and complexity; a run's phase lends its own when the call names none."""
    category, complexity = call.category, call.complexity
    if call.run_id and call.phase_id and (not category or not complexity):
        phase = (
            Phase.objects.filter(run__run_id=call.run_id, phase_id=call.phase_id)
            .values("task_category", "complexity")
            .first()
        )
        if phase:
            category = category or phase["task_category"] or None
            complexity = complexity or phase["complexity"] or None
    return category, complexity


def _wait_for_cooldown(provider: str, category: str | None, timeout: float) -> None:
    """A critical call never hammers a cooling provider: it waits out a cooldown shorter than its timeout."""
    state = provider_states(get_config()).get(provider)
    now = clock.now()
    if state is None or not state.is_cooling(now):
        return
    wait = (state.cooldown_until - now).total_seconds()
    if wait > timeout:
        raise ProviderCoolingDown(provider, state.cooldown_until, category or GENERAL)
    time.sleep(wait)


def _json_body(response):
    """A provider's body as JSON, or None when it is not."""
    try:
        return response.json()
    except ValueError:
        return None


def _is_answer(api: str, data) -> bool:
    """Whether a body has the shape of its API's answer: a chat completion's choices, a response's output."""
    return isinstance(data, dict) and isinstance(data.get("choices" if api == CHAT else "output"), list)


def _malformation(call: Call, data, content_type: str) -> str:
    if call.stream:
        return f"{content_type} instead of a stream of events"
    if data is None:
        return f"not JSON ({content_type})"
    return f"no {'choices' if call.api == CHAT else 'output'} in the JSON"


def _output_limit(body: dict) -> int | None:
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return (error.get("message") if isinstance(error, dict) else str(error)) or exc.message


def _detail(usage: dict, group: str, key: str) -> int:
    details = usage.get(group)
    value = details.get(key) if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0
