"""LlmService: route, call the provider with the official openai SDK, fall back, and record usage.

    llm = LlmService()
    result = llm.execute_builder_phase(phase_spec=spec, file_context=files, run_id=run.run_id, phase_id="F1.1")

Every attempt is recorded with its exact usage and the router's decision, under a request id of its
own, so a retried call never counts twice. A 429, a 5xx, a timeout, a refused connection or a
malformed answer puts the provider in a cooldown kept in the database (every worker and machine
honours it) and a non-critical call moves down its fallback chain; critical categories never fall
back. All of it is routing.calls, the one path the OpenAI-compatible gateway shares.

Each attempt first passes its run's checks (routing.budgets): a paused, finished or over-budget run
raises RunPaused, RunFinished or BudgetExhausted (all RunRefused) before anything is sent or recorded,
so a pause or cancel on the dashboard takes effect at the run's next call.
"""

import json
from dataclasses import dataclass, field

from routing.budgets import BudgetExhausted, RunFinished, RunPaused, RunRefused
from routing.calls import CHAT, Call, LlmError, place_call
from routing.config import ConfigError
from routing.router import Decision, RoutingError

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
        call = Call(
            api=CHAT,
            body={"messages": messages, **options},
            role=role,
            category=category,
            complexity=complexity,
            run_id=run_id,
            phase_id=phase_id,
        )
        answer = place_call(call, timeout=self.timeout, max_attempts=self.max_attempts)
        choices = answer.data.get("choices") or [{}]
        text = ((choices[0] or {}).get("message") or {}).get("content") or ""
        return Completion(
            text,
            answer.decision.model,
            answer.decision.provider,
            answer.request_id,
            answer.decision,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.failures,
        )

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
