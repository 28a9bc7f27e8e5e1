"""LlmService: route, call the provider with the official openai SDK, fall back, and record usage.

    llm = LlmService()
    result = llm.execute_builder_phase(phase_spec=spec, file_context=files, run_id=run.run_id, phase_id="F1.1")

Every attempt is recorded with its exact usage and the router's decision, under a request id of its
own, so a retried call never counts twice. A 429, a 5xx or a timeout puts the provider in a cooldown
kept in the database (every worker and machine honours it) and a non-critical call moves down its
fallback chain; critical categories never fall back.

Each attempt first passes its run's checks (routing.budgets): a paused, finished or over-budget run
raises RunPaused, RunFinished or BudgetExhausted (all RunRefused) before anything is sent or recorded,
so a pause or cancel on the dashboard takes effect at the run's next call.
"""

import functools
import json
import os
import time
import uuid
from dataclasses import dataclass, field

import openai
from django.db import transaction

from notes.services import mark_delivered, notes_prompt, pending_notes
from routing.budgets import BudgetExhausted, RunFinished, RunPaused, RunRefused, reserve_call, settle
from routing.config import ConfigError, get_config
from routing.router import Decision, RoutingError, select
from routing.services import put_in_cooldown
from usage.recording import record_usage

BUILDER_PROMPT = (
    "You are the Builder of Autopack, an autonomous build system. Implement the phase described by the "
    "user in the given code base. Answer with one unified diff (git format) and nothing else."
)
AUDITOR_PROMPT = (
    "You are the Auditor of Autopack, an autonomous build system. Review the patch for the phase "
    'described by the user. Answer with JSON: {"approved": true|false, "issues": [{"issue_key": str, '
    '"severity": "minor"|"major", "category": str, "description": str}], "summary": str}.'
)


__all__ = ["BudgetExhausted", "LlmError", "LlmService", "RunFinished", "RunPaused", "RunRefused"]


class LlmError(Exception):
    """The call failed and was not retried further; the message says why and where."""


@dataclass
class Completion:
    text: str
    model: str
    provider: str
    request_id: str
    decision: Decision
    prompt_tokens: int
    completion_tokens: int
    failed_attempts: list[str] = field(default_factory=list)

    @property
    def tokens_used(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class CallResult(dict):
    """A call's result: a dict, whose keys also read as attributes like the original's result objects.

    `result["patch_content"]` and `result.patch_content` are the same.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class LlmService:
    def __init__(self, db=None, *, timeout: float = 120.0, max_attempts: int = 4):
        # `db` is the original's SQLAlchemy session; accepted so its wiring works unchanged, and
        # unused: this service reads and writes through Django's database connection.
        self.timeout = timeout
        self.max_attempts = max_attempts

    def complete(
        self,
        role: str,
        category: str | None,
        complexity: str | None,
        messages: list[dict],
        run_id: str | None = None,
        phase_id: str | None = None,
        **options,
    ) -> Completion:
        """One chat completion, routed and recorded. Raises LlmError, RunRefused, or the router's errors."""
        config = get_config()
        critical = (category or "general") in config.routing.never_fallback_categories
        call_id = uuid.uuid4().hex
        notes = pending_notes(run_id)
        if notes:
            messages = with_notes(messages, notes_prompt(notes))
        failures: list[str] = []
        tried: set[str] = set()
        for attempt in range(1, self.max_attempts + 1):
            decision = select(role, category, complexity, run=run_id)
            if decision.model in tried:
                break
            tried.add(decision.model)
            request_id = f"{call_id}:{attempt}"
            output_limit = options.get("max_tokens") or options.get("max_completion_tokens")
            reservation = reserve_call(
                run_id=run_id,
                model=config.model(decision.model),
                messages=messages,
                max_tokens=output_limit if isinstance(output_limit, int) else None,
                timeout=self.timeout,
            )
            try:
                completion = self._attempt(
                    decision, messages, run_id, phase_id, request_id, failures, options, reservation
                )
            except _Retryable as exc:
                failures.append(f"{decision.model}: {exc}")
                put_in_cooldown(provider=decision.provider, reason=str(exc), retry_after=exc.retry_after)
                if critical:
                    raise LlmError(
                        f"{decision.model} failed ({exc}); {decision.category} is never downgraded, so no fallback"
                    ) from None
                continue
            finally:
                # Settled with the usage already; this drops the hold of a call that failed without any.
                settle(reservation)
            # Only a call that reached the model has read the notes.
            mark_delivered(notes, call=f"{role} call {request_id} ({decision.model})")
            return completion
        raise LlmError("every attempt failed: " + "; ".join(failures or ["no model left to try"]))

    def _attempt(self, decision, messages, run_id, phase_id, request_id, failures, options, reservation) -> Completion:
        client = self._client(decision.provider)
        started = time.monotonic()
        try:
            response = client.chat.completions.create(model=decision.model, messages=messages, **options)
        except openai.APITimeoutError:
            raise _Retryable(f"timed out after {self.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise _Retryable(f"could not connect ({exc.__cause__ or exc})") from None
        except openai.APIStatusError as exc:
            latency = int((time.monotonic() - started) * 1000)
            with transaction.atomic():
                self._record_error_usage(decision, exc, run_id, phase_id, request_id, latency, failures)
                settle(reservation)
            if exc.status_code == 429 or exc.status_code >= 500:
                raise _Retryable(f"HTTP {exc.status_code}", retry_after=_retry_after(exc.response)) from None
            raise LlmError(
                f"{decision.provider} refused {decision.model}: HTTP {exc.status_code} {_message(exc)}"
            ) from None
        latency = int((time.monotonic() - started) * 1000)
        usage = response.usage
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        # The real usage replaces the hold in one transaction: never both counted, never neither.
        with transaction.atomic():
            _record(
                decision,
                run_id,
                phase_id,
                request_id,
                failures,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_prompt_tokens=_detail(usage, "prompt_tokens_details", "cached_tokens"),
                reasoning_tokens=_detail(usage, "completion_tokens_details", "reasoning_tokens"),
                latency_ms=latency,
            )
            settle(reservation)
        text = (response.choices[0].message.content or "") if response.choices else ""
        return Completion(text, decision.model, decision.provider, request_id, decision, prompt, completion, failures)

    def _record_error_usage(self, decision, exc, run_id, phase_id, request_id, latency, failures) -> None:
        """A failed call still cost tokens when the provider says so."""
        try:
            body = exc.response.json()
        except ValueError:
            return
        body = body if isinstance(body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        usage = body.get("usage") or error.get("usage")
        if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
            return
        completion = usage.get("completion_tokens")
        if not isinstance(completion, int):
            completion = 0
        _record(
            decision,
            run_id,
            phase_id,
            request_id,
            failures,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=completion,
            latency_ms=latency,
            status="error",
        )

    def _client(self, provider: str) -> openai.OpenAI:
        endpoint = get_config().providers.get(provider)
        if endpoint is None:
            raise ConfigError("models.yaml", [(f"providers.{provider}", "no endpoint configured")])
        # The one place that reads the environment directly: keys stay out of settings and files.
        key = os.environ.get(endpoint.api_key_env or "")
        if not key:
            raise LlmError(f"{provider}: set the {endpoint.api_key_env} environment variable to its API key")
        return _sdk_client(endpoint.base_url, key, self.timeout)

    # --- the original's calls ---------------------------------------------------------------------

    def execute_builder_phase(
        self,
        phase_spec: dict,
        file_context: dict | str | None = None,
        max_tokens: int | None = None,
        project_rules: list | None = None,
        run_hints: list | None = None,
        run_id: str | None = None,
        phase_id: str | None = None,
        run_context: dict | None = None,
        **options,
    ) -> CallResult:
        """Ask the Builder for a patch. The original's arguments and result, plus the decision and request id."""
        guidance = _guidance_text(project_rules, run_hints, run_context)
        material = "Files:\n" + _files_text(file_context or {})
        options = _with_max_tokens(options, max_tokens)
        messages = _agent_messages(BUILDER_PROMPT, phase_spec, guidance, material)
        result = self._run("builder", phase_spec, messages, run_id, phase_id, options, _builder_result)
        return CallResult(result, builder_messages=[])

    def execute_auditor_review(
        self,
        patch_content: str,
        phase_spec: dict,
        max_tokens: int | None = None,
        project_rules: list | None = None,
        run_hints: list | None = None,
        run_id: str | None = None,
        phase_id: str | None = None,
        run_context: dict | None = None,
        **options,
    ) -> CallResult:
        """Ask the Auditor to review a patch. The original's arguments and result, plus the decision and request id."""
        guidance = _guidance_text(project_rules, run_hints, run_context)
        options = _with_max_tokens(options, max_tokens)
        messages = _agent_messages(AUDITOR_PROMPT, phase_spec, guidance, "Patch:\n" + patch_content)
        result = self._run("auditor", phase_spec, messages, run_id, phase_id, options, _auditor_result)
        return CallResult(result, auditor_messages=[])

    def _run(self, role, phase_spec, messages, run_id, phase_id, options, shape) -> dict:
        category, complexity = phase_spec.get("task_category"), phase_spec.get("complexity")
        try:
            completion = self.complete(role, category, complexity, messages, run_id, phase_id, **options)
        except (LlmError, RoutingError, ConfigError, RunRefused) as exc:
            return {
                "success": False,
                "tokens_used": 0,
                "model_used": None,
                "error": str(exc),
                "decision": None,
                "request_id": None,
                **shape(None),
            }
        return {
            "success": True,
            "tokens_used": completion.tokens_used,
            "model_used": completion.model,
            "error": None,
            "decision": completion.decision.as_dict(),
            "request_id": completion.request_id,
            **shape(completion.text),
        }


@functools.lru_cache(maxsize=32)
def _sdk_client(base_url: str | None, key: str, timeout: float) -> openai.OpenAI:
    """One SDK client per endpoint, key and timeout, kept: building one (its TLS context, its connection
    pool) costs some 30 ms, more than the rest of a routed and recorded call. The clients are thread-safe.
    """
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)


def with_notes(messages: list[dict], notes_text: str) -> list[dict]:
    """The messages with the people's notes at the end of the system prompt (a new one if none)."""
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0].get('content', '')}\n\n{notes_text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": notes_text}, *messages]


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


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


def _detail(usage, group: str, key: str) -> int:
    details = getattr(usage, group, None) if usage else None
    return (getattr(details, key, None) or 0) if details else 0


def _record(decision: Decision, run_id, phase_id, request_id: str, failures: list[str], **figures) -> None:
    """Record one attempt's usage under its own request id, with the router's decision."""
    record_usage(
        provider=decision.provider,
        model=decision.model,
        role=decision.role,
        run_id=run_id or "",
        phase_id=phase_id or "",
        request_id=request_id,
        decision=decision_record(decision, failures),
        **figures,
    )


def decision_record(decision: Decision, failures: list[str]) -> dict:
    return {
        "asked_for": decision.chosen_model,
        "used": decision.model,
        "source": decision.source,
        "reasons": decision.reasons,
        "warnings": decision.warnings,
        "quota": decision.quota,
        "failed_attempts": list(failures),
    }


def _phase_text(spec: dict) -> str:
    lines = [f"Phase: {spec.get('name') or spec.get('phase_id', '')}"]
    for key in ("description", "task_category", "complexity", "acceptance_criteria"):
        if spec.get(key):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {spec[key]}")
    return "\n".join(lines)


def _agent_messages(system: str, phase_spec: dict, guidance: str, material: str) -> list[dict]:
    """The Builder's or Auditor's prompt: the phase, the original's guidance, then what to work on."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{_phase_text(phase_spec)}{guidance}\n\n{material}"},
    ]


def _with_max_tokens(options: dict, max_tokens: int | None) -> dict:
    return {**options, "max_tokens": max_tokens} if max_tokens is not None else options


def _guidance_text(project_rules, run_hints, run_context) -> str:
    """The original's learned rules, this run's hints and its context, as sections of the prompt."""
    parts = []
    for title, items in (("Project rules", project_rules), ("Hints from earlier in this run", run_hints)):
        if items:
            parts.append(f"{title}:\n" + "\n".join(f"- {_rule_text(item)}" for item in items))
    if run_context:
        parts.append("Run context:\n" + json.dumps(run_context, default=str, indent=2, sort_keys=True))
    return "".join(f"\n\n{part}" for part in parts)


def _rule_text(item) -> str:
    # The original passes rules as strings or as objects with a rule text and an id.
    if isinstance(item, dict):
        return str(item.get("rule") or item.get("text") or item.get("hint") or json.dumps(item, default=str))
    return str(getattr(item, "rule", None) or getattr(item, "text", None) or item)


def _files_text(context: dict | str) -> str:
    if isinstance(context, str):
        return context
    # The original's executor wraps its files as {"existing_files": {path: content}}.
    if isinstance(context.get("existing_files"), dict):
        context = context["existing_files"]
    return "\n\n".join(f"--- {path}\n{content}" for path, content in context.items())


def _builder_result(text: str | None) -> dict:
    return {"patch_content": text}


def _auditor_result(text: str | None) -> dict:
    review = {"review": text, "approved": None, "issues_found": []}
    if text is None:
        return review
    try:
        parsed = json.loads(text)
    except ValueError:
        return review
    if isinstance(parsed, dict):
        review["approved"] = parsed.get("approved") if isinstance(parsed.get("approved"), bool) else None
        review["issues_found"] = parsed.get("issues") if isinstance(parsed.get("issues"), list) else []
    return review
