"""Model selection for each Builder and Auditor call.

Precedence: run override → global override → category override → complexity default → defaults.
With `quota_routing.enabled`, critical categories (`never_fallback_categories`) keep their model
past the soft limit and fail fast when the provider is exhausted; other categories walk their whole
fallback chain for a provider under its soft limit and not cooling down.
"""

import datetime as dt
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from autopack_site import clock
from routing.config import AGENT_DEFAULT_MODEL, COMPLEXITIES, GENERAL, ROLES, ModelsConfig, get_config, is_role
from routing.models import ModelOverride
from routing.quotas import ADJECTIVE, ProviderState, provider_states


class RoutingError(Exception):
    """The call cannot be routed (bad role or complexity, or a model outside the catalog)."""


class UnknownModel(RoutingError):
    """The call named a model the catalog does not list."""


class QuotaExhausted(RoutingError):
    def __init__(self, provider: str, window: str, used: int, cap: int, detail: str = ""):
        self.provider, self.window, self.used, self.cap = provider, window, used, cap
        super().__init__(
            f"{provider} has used {used:,} of its {ADJECTIVE[window]} cap of {cap:,} tokens"
            + (f"; {detail}" if detail else "")
        )


class ChainCoolingDown(RoutingError):
    """Every model a non-critical call may fall back to is on a provider cooling down (or out of quota)."""

    def __init__(self, message: str, until: dt.datetime):
        super().__init__(message)
        self.until = until
        # Whole seconds until the first cooldown ends: when the call may be tried again.
        self.retry_after = max(1, int((until - clock.now()).total_seconds() + 0.999))


@dataclass
class Decision:
    role: str
    category: str
    complexity: str
    model: str
    provider: str
    baseline_model: str
    source: str
    # What the YAML or an override chose, before quotas had their say.
    chosen_model: str = ""
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quota: dict = field(default_factory=dict)

    @property
    def is_redirected(self) -> bool:
        """True when quotas or cooldowns moved the call off the chosen model."""
        return self.model != self.chosen_model

    def as_dict(self) -> dict:
        return asdict(self)


def baseline(config: ModelsConfig, role: str, category: str, complexity: str) -> tuple[str, str, str]:
    """The YAML's choice: (model, source, reason)."""
    rules = config.routing
    chosen = rules.category_models.get(category, {}).get(role)
    if chosen:
        return chosen, "yaml", f"category_models.{category}.{role}_model_override"
    chosen = rules.complexity_models.get(complexity, {}).get(role)
    if chosen:
        return chosen, "yaml", f"complexity_models.{complexity}.{role}"
    chosen = rules.defaults.get(role)
    if chosen:
        return chosen, "yaml", f"defaults.high_risk_{role}"
    if role not in ROLES:
        return AGENT_DEFAULT_MODEL, "yaml", "the default for auxiliary agents"
    raise RoutingError(f"models.yaml names no model for {role} at {complexity} complexity in category {category}")


def matching_override(overrides: list[ModelOverride], role: str, category: str, complexity: str):
    """The most specific override that applies: category and complexity, then category, then complexity."""
    fitting = [
        o for o in overrides if o.role == role and o.category in ("", category) and o.complexity in ("", complexity)
    ]
    return max(fitting, key=lambda o: o.specificity, default=None)


# Every routed call reads the overrides, so each process keeps them for a moment instead of asking
# the database each time. A change made through routing.services is seen at once in the process that
# made it (it forgets its copy); other workers and machines see it within this many seconds.
OVERRIDES_CACHE_SECONDS = 2.0
_overrides_lock = threading.Lock()
_overrides: tuple[float, list[ModelOverride], dict[str, list[ModelOverride]]] | None = None


def load_overrides(run_id: str | None) -> tuple[list[ModelOverride], list[ModelOverride]]:
    """(run overrides, global overrides), from this process's copy of every override."""
    global _overrides
    with _overrides_lock:
        cached = _overrides
    if cached is None or time.monotonic() - cached[0] >= OVERRIDES_CACHE_SECONDS:
        global_rows, by_run = [], defaultdict(list)
        for override in ModelOverride.objects.select_related("run"):
            if override.scope == ModelOverride.GLOBAL:
                global_rows.append(override)
            else:
                by_run[override.run.run_id].append(override)
        cached = (time.monotonic(), global_rows, dict(by_run))
        with _overrides_lock:
            _overrides = cached
    return cached[2].get(run_id, []) if run_id else [], cached[1]


def forget_cached_overrides() -> None:
    """Drop this process's copy of the overrides (after a change here, and between tests)."""
    global _overrides
    with _overrides_lock:
        _overrides = None


def _checked_call(role: str, complexity: str | None) -> str:
    """The call's complexity (medium when none is given), once its role and complexity are known ones."""
    if not is_role(role):
        raise RoutingError(f"unknown role {role!r} (known: {', '.join(ROLES)} or agent:<name>)")
    complexity = complexity or "medium"
    if complexity not in COMPLEXITIES:
        raise RoutingError(f"unknown complexity {complexity!r} (known: {', '.join(COMPLEXITIES)})")
    return complexity


def select(
    role: str,
    category: str | None,
    complexity: str | None,
    run=None,
    *,
    config: ModelsConfig | None = None,
    overrides: tuple[list, list] | None = None,
    states: dict[str, ProviderState] | None = None,
) -> Decision:
    """Choose the model for one call. Raises ConfigError, RoutingError or QuotaExhausted."""
    config = config or get_config()
    complexity = _checked_call(role, complexity)
    category = category or GENERAL
    run_id = getattr(run, "run_id", run)
    run_overrides, global_overrides = overrides if overrides is not None else load_overrides(run_id)

    base_model, source, reason = baseline(config, role, category, complexity)
    decision_model, reasons = base_model, [f"baseline {base_model} from {reason}"]
    for scope_name, candidates in (("run override", run_overrides), ("global override", global_overrides)):
        chosen = matching_override(candidates, role, category, complexity)
        if chosen:
            decision_model, source = chosen.model, scope_name
            reasons.append(f"{scope_name} → {chosen.model}" + (f" ({chosen.note})" if chosen.note else ""))
            break
    info = config.model(decision_model)
    if info is None:
        raise RoutingError(f"model {decision_model!r} is not in the catalog")
    decision = Decision(
        role, category, complexity, decision_model, info.provider, base_model, source, decision_model, reasons
    )
    if not config.routing.quota_routing_enabled:
        return decision

    states = states if states is not None else provider_states(config)
    state = states.get(info.provider)
    if state:
        decision.quota[info.provider] = state.figures()
    if source != "yaml":
        _warn_if_pressed(decision, state)
        return decision
    if category in config.routing.never_fallback_categories:
        return _keep_critical(decision, state)
    return _walk_chain(decision, config, states)


def select_model(
    model: str,
    role: str,
    category: str | None,
    complexity: str | None,
    *,
    config: ModelsConfig | None = None,
    states: dict[str, ProviderState] | None = None,
) -> Decision:
    """A call that names its catalog model: kept, with the quota warnings an override gets. Raises UnknownModel."""
    config = config or get_config()
    complexity = _checked_call(role, complexity)
    info = config.model(model)
    if info is None:
        raise UnknownModel(f"model {model!r} is not in the catalog")
    category = category or GENERAL
    reasons = [f"asked for {model} by name"]
    decision = Decision(role, category, complexity, model, info.provider, model, "explicit", model, reasons)
    if config.routing.quota_routing_enabled:
        state = (states if states is not None else provider_states(config)).get(info.provider)
        if state:
            decision.quota[info.provider] = state.figures()
        _warn_if_pressed(decision, state)
    return decision


def _warn_if_pressed(decision: Decision, state: ProviderState | None) -> None:
    if state is None:
        return
    if state.is_cooling(clock.now()):
        decision.warnings.append(f"{state.provider} is cooling down until {state.cooldown_until:%H:%M:%S} UTC")
    window = state.exhausted_window or state.soft_window
    if window:
        limit = "cap" if window.used >= window.cap else "soft limit"
        decision.warnings.append(f"over its {limit}: {state.describe(window)}")


def _keep_critical(decision: Decision, state: ProviderState | None) -> Decision:
    if state and (window := state.exhausted_window):
        raise QuotaExhausted(
            state.provider,
            window.window,
            window.used,
            window.cap,
            f"{decision.category} is never downgraded, so the call fails rather than fall back",
        )
    _warn_if_pressed(decision, state)
    if decision.warnings:
        decision.reasons.append(f"{decision.category} is never downgraded: keeping {decision.model}")
    return decision


def chain_for(config: ModelsConfig, category: str, complexity: str) -> list[str]:
    rules = config.routing
    chain = [
        *rules.fallbacks.get(category, ()),
        *rules.fallbacks.get(f"{complexity}_complexity_general", ()),
        *rules.default_fallbacks,
    ]
    return list(dict.fromkeys(chain))


def _usable(state: ProviderState | None, now) -> bool:
    return state is None or (not state.soft_window and not state.exhausted_window and not state.is_cooling(now))


def _walk_chain(decision: Decision, config: ModelsConfig, states: dict[str, ProviderState]) -> Decision:
    now = clock.now()
    state = states.get(decision.provider)
    if _usable(state, now):
        return decision
    why = _pressure(state, now)
    candidates = [
        decision.model,
        *[m for m in chain_for(config, decision.category, decision.complexity) if m != decision.model],
    ]
    for model in candidates[1:]:
        provider = config.model(model).provider
        if _usable(states.get(provider), now):
            decision.reasons.append(f"{decision.provider}: {why}; fell back to {model}")
            _take(decision, model, provider, states)
            return decision
    # Nobody is under the soft limit: the least-used provider that is not exhausted, with a warning.
    open_ones = []
    for position, model in enumerate(candidates):
        provider = config.model(model).provider
        other = states.get(provider)
        if other and (other.exhausted_window or other.is_cooling(now)):
            continue
        open_ones.append((other.tightest_share if other else 0.0, position, model, provider))
    if not open_ones:
        detail = "every model in the fallback chain is on an exhausted or cooling-down provider"
        if worst := state.exhausted_window:
            raise QuotaExhausted(decision.provider, worst.window, worst.used, worst.cap, detail)
        # Not exhausted, so cooling down: the chain opens again when its first cooldown ends.
        cooling = (states.get(config.model(m).provider) for m in candidates)
        until = min(s.cooldown_until for s in cooling if s and s.is_cooling(now))
        raise ChainCoolingDown(f"{decision.provider} is {why}; {detail}", until)
    _, _, model, provider = min(open_ones)
    decision.warnings.append(f"every provider in the chain is over its soft limit; {provider} has the most room")
    if model != decision.model:
        decision.reasons.append(f"{decision.provider}: {why}; fell back to {model}")
    _take(decision, model, provider, states)
    return decision


def _pressure(state: ProviderState, now) -> str:
    if state.is_cooling(now):
        return f"cooling down until {state.cooldown_until:%H:%M:%S} UTC ({state.cooldown_reason})"
    window = state.exhausted_window or state.soft_window
    return f"over its {'cap' if window.used >= window.cap else 'soft limit'} ({state.describe(window)})"


def _take(decision: Decision, model: str, provider: str, states: dict[str, ProviderState]) -> None:
    decision.model, decision.provider = model, provider
    if provider in states:
        decision.quota[provider] = states[provider].figures()
