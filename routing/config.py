"""The one reader of config/models.yaml: validated, loaded once, reloaded when the file changes.

The server never writes the file. Every problem is reported with its key path; while the file is
broken `get_config()` raises `ConfigError` and callers show that error.
"""

import functools
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from django.conf import settings

from autopack_site.errors import ConfigError
from routing.catalog import BUILTIN_MODELS, BUILTIN_PROVIDERS, CatalogEntry, canonical_provider

ROLES = ("builder", "auditor")
AGENT_ROLE = re.compile(r"agent:[A-Za-z0-9_.\-]{1,80}")
# What the original router gives an auxiliary agent that models.yaml names no model for.
AGENT_DEFAULT_MODEL = "claude-sonnet-4-5"
COMPLEXITIES = ("low", "medium", "high")
GENERAL = "general"
KNOWN_TOP_LEVEL_KEYS = {
    "models",
    "providers",
    "provider_quotas",
    "complexity_models",
    "category_models",
    "quota_routing",
    "fallback_strategy",
    "defaults",
}
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    provider: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None

    def cost(self, *, prompt: int, completion: int, cached: int) -> Decimal:
        """Uncached input at the input price, cached input at the cached price, output at the output price."""
        cached_price = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return (
            (prompt - cached) * self.input_per_mtok + cached * cached_price + completion * self.output_per_mtok
        ) / MILLION


@dataclass(frozen=True)
class ProviderQuota:
    provider: str
    weekly_token_cap: int | None = None
    daily_token_cap: int | None = None
    monthly_token_cap: int | None = None
    soft_limit_ratio: float = 0.8


@dataclass(frozen=True)
class ProviderEndpoint:
    name: str
    base_url: str | None
    api_key_env: str | None


@dataclass(frozen=True)
class RoutingRules:
    """The routing half of models.yaml, in the original Autopack format."""

    # complexity -> role -> model
    complexity_models: dict[str, dict[str, str]] = field(default_factory=dict)
    # category -> role -> model
    category_models: dict[str, dict[str, str]] = field(default_factory=dict)
    category_descriptions: dict[str, str] = field(default_factory=dict)
    quota_routing_enabled: bool = False
    never_fallback_categories: frozenset[str] = frozenset()
    # category (or "<complexity>_complexity_general") -> models
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_fallbacks: tuple[str, ...] = ()
    # role -> model, from defaults.high_risk_<role>
    defaults: dict[str, str] = field(default_factory=dict)

    def categories(self) -> list[str]:
        """Every category the file names, "general" (a phase with no special category) included."""
        names = set(self.category_models) | {GENERAL}
        names |= {c for c in self.fallbacks if not c.endswith("_complexity_general")}
        return sorted(names, key=lambda c: (c == GENERAL, c))


@dataclass(frozen=True)
class ModelsConfig:
    source: str
    models: dict[str, ModelInfo]
    providers: dict[str, ProviderEndpoint]
    provider_quotas: dict[str, ProviderQuota]
    routing: RoutingRules = field(default_factory=RoutingRules)
    warnings: tuple[str, ...] = ()

    def model(self, name: str) -> ModelInfo | None:
        return self.models.get(name)


class _Problems:
    def __init__(self):
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append((path, reason))


def _number(value, path, problems, *, positive=False, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        problems.add(path, "must be an integer" if integer else "must be a number")
        return None
    if value < 0 or (positive and value == 0):
        problems.add(path, "must be positive" if positive else "may not be negative")
        return None
    return value


def parse_config(data, source: str) -> ModelsConfig:
    """Check a loaded YAML document and build the config, or raise ConfigError listing every problem."""
    problems = _Problems()
    warnings = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [("(root)", "must be a mapping of sections")])
    for key in data:
        if key not in KNOWN_TOP_LEVEL_KEYS:
            warnings.append(f"{key}: not used by Autopack Dashboard; ignored")

    providers = {
        name: ProviderEndpoint(name, spec["base_url"], spec["api_key_env"]) for name, spec in BUILTIN_PROVIDERS.items()
    }
    for name, spec in _section(data, "providers", problems).items():
        path = f"providers.{name}"
        if not isinstance(spec, dict):
            problems.add(path, "must be a mapping")
            continue
        base_url, key_env = spec.get("base_url"), spec.get("api_key_env")
        if base_url is not None and not isinstance(base_url, str):
            problems.add(f"{path}.base_url", "must be a URL string")
        if not isinstance(key_env, str) or not key_env:
            problems.add(f"{path}.api_key_env", "must name the environment variable holding the API key")
        name = canonical_provider(str(name))
        providers[name] = ProviderEndpoint(name, base_url, key_env)

    models = {name: _builtin_model(name, entry) for name, entry in BUILTIN_MODELS.items()}
    for name, spec in _section(data, "models", problems).items():
        path = f"models.{name}"
        if not isinstance(spec, dict):
            problems.add(path, "must be a mapping")
            continue
        provider = spec.get("provider")
        if isinstance(provider, str):
            provider = canonical_provider(provider)
        if provider not in providers:
            problems.add(f"{path}.provider", f"unknown provider {provider!r} (known: {', '.join(sorted(providers))})")
        prices = {}
        for key in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok"):
            if key in spec and spec[key] is not None:
                value = _number(spec[key], f"{path}.{key}", problems)
                prices[key] = None if value is None else Decimal(str(value))
            elif key != "cached_input_per_mtok":
                problems.add(f"{path}.{key}", "is required")
        sizes = {}
        for key in ("context_window", "max_output_tokens"):
            if spec.get(key) is not None:
                sizes[key] = _number(spec[key], f"{path}.{key}", problems, positive=True, integer=True)
        models[str(name)] = ModelInfo(
            str(name),
            str(provider),
            prices.get("input_per_mtok") or Decimal(0),
            prices.get("output_per_mtok") or Decimal(0),
            prices.get("cached_input_per_mtok"),
            sizes.get("context_window"),
            sizes.get("max_output_tokens"),
        )

    quotas = {}
    for key, spec in _section(data, "provider_quotas", problems).items():
        path = f"provider_quotas.{key}"
        name = canonical_provider(str(key))
        if name in quotas:
            problems.add(path, f"names the provider {name!r} a second time")
        if name not in providers:
            problems.add(path, f"unknown provider {name!r} (known: {', '.join(sorted(providers))})")
        if not isinstance(spec, dict):
            problems.add(path, "must be a mapping")
            continue
        caps = {}
        for key in ("weekly_token_cap", "daily_token_cap", "monthly_token_cap"):
            if spec.get(key) is not None:
                caps[key] = _number(spec[key], f"{path}.{key}", problems, integer=True)
        ratio = spec.get("soft_limit_ratio", 0.8)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            problems.add(f"{path}.soft_limit_ratio", "must be a number in (0, 1]")
            ratio = 0.8
        quotas[str(name)] = ProviderQuota(str(name), soft_limit_ratio=float(ratio), **caps)

    routing = _parse_routing(data, models, problems, warnings)
    if problems.items:
        raise ConfigError(source, problems.items)
    return ModelsConfig(source, models, providers, quotas, routing, tuple(warnings))


def _builtin_model(name: str, entry: CatalogEntry) -> ModelInfo:
    def price(value: float | None) -> Decimal | None:
        # Through str: the float 0.1 would otherwise become 0.1000000000000000055511151231257827.
        return None if value is None else Decimal(str(value))

    return ModelInfo(
        name,
        entry.provider,
        price(entry.input_per_mtok),
        price(entry.output_per_mtok),
        price(entry.cached_input_per_mtok),
        entry.context_window,
        entry.max_output_tokens,
    )


def _model_name(value, path: str, models: dict, problems: _Problems) -> str | None:
    if not isinstance(value, str) or not value:
        problems.add(path, "must be a model name")
        return None
    if value not in models:
        problems.add(path, f"unknown model {value!r}: add it under `models` with its provider and prices")
        return None
    return value


def _model_list(value, path: str, models: dict, problems: _Problems) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.add(path, "must be a list of model names")
        return ()
    names = (_model_name(v, f"{path}[{i}]", models, problems) for i, v in enumerate(value))
    return tuple(n for n in names if n)


def is_role(role: str) -> bool:
    """builder, auditor, or an auxiliary agent's `agent:<name>` (the original router's roles)."""
    return role in ROLES or AGENT_ROLE.fullmatch(role) is not None


def _parse_routing(data: dict, models: dict, problems: _Problems, warnings: list[str]) -> RoutingRules:
    complexity_models: dict[str, dict[str, str]] = {}
    for level, spec in _section(data, "complexity_models", problems).items():
        path = f"complexity_models.{level}"
        if level not in COMPLEXITIES:
            problems.add(path, f"unknown complexity (known: {', '.join(COMPLEXITIES)})")
            continue
        if not isinstance(spec, dict):
            problems.add(path, "must be a mapping of role to model")
            continue
        for key, value in spec.items():
            if is_role(key):
                if name := _model_name(value, f"{path}.{key}", models, problems):
                    complexity_models.setdefault(level, {})[key] = name
            else:
                warnings.append(f"{path}.{key}: not used by Autopack Dashboard; ignored")

    category_models: dict[str, dict[str, str]] = {}
    descriptions: dict[str, str] = {}
    for category, spec in _section(data, "category_models", problems).items():
        path = f"category_models.{category}"
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            problems.add(path, "must be a mapping")
            continue
        category_models[str(category)] = {}
        for key, value in spec.items():
            role = key.removesuffix("_model_override")
            if key == "description":
                descriptions[str(category)] = str(value)
            elif is_role(role) and key.endswith("_model_override"):
                if name := _model_name(value, f"{path}.{key}", models, problems):
                    category_models[str(category)][role] = name
            else:
                warnings.append(f"{path}.{key}: not used by Autopack Dashboard; ignored")

    quota = _section(data, "quota_routing", problems)
    enabled = quota.get("enabled", False)
    if not isinstance(enabled, bool):
        problems.add("quota_routing.enabled", "must be true or false")
        enabled = False
    never = quota.get("never_fallback_categories", []) or []
    if not isinstance(never, list) or not all(isinstance(c, str) for c in never):
        problems.add("quota_routing.never_fallback_categories", "must be a list of category names")
        never = []

    strategy = _section(data, "fallback_strategy", problems)
    fallbacks = {}
    by_category = strategy.get("by_category") or {}
    if not isinstance(by_category, dict):
        problems.add("fallback_strategy.by_category", "must be a mapping")
        by_category = {}
    for category, spec in by_category.items():
        path = f"fallback_strategy.by_category.{category}"
        if not isinstance(spec, dict) or "fallbacks" not in spec:
            problems.add(path, "must be a mapping with a `fallbacks` list")
            continue
        fallbacks[str(category)] = _model_list(spec["fallbacks"], f"{path}.fallbacks", models, problems)
    default_fallbacks = ()
    if "default_fallbacks" in strategy:
        default_fallbacks = _model_list(
            strategy["default_fallbacks"], "fallback_strategy.default_fallbacks", models, problems
        )
    for key in strategy:
        if key not in ("by_category", "default_fallbacks"):
            warnings.append(f"fallback_strategy.{key}: not used by Autopack Dashboard; ignored")

    defaults = {}
    for key, value in _section(data, "defaults", problems).items():
        role = key.removeprefix("high_risk_")
        if key.startswith("high_risk_") and role in ROLES:
            if name := _model_name(value, f"defaults.{key}", models, problems):
                defaults[role] = name
        else:
            warnings.append(f"defaults.{key}: not used by Autopack Dashboard; ignored")

    return RoutingRules(
        complexity_models=complexity_models,
        category_models=category_models,
        category_descriptions=descriptions,
        quota_routing_enabled=enabled,
        never_fallback_categories=frozenset(never),
        fallbacks=fallbacks,
        default_fallbacks=default_fallbacks,
        defaults=defaults,
    )


def _section(data: dict, key: str, problems: _Problems) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, "must be a mapping")
        return {}
    return value


def load_config(path: str | Path) -> ModelsConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [("(file)", "not found")]) from None
    except OSError as exc:
        raise ConfigError(source, [("(file)", f"cannot be read: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(source, [(where, f"invalid YAML: {getattr(exc, 'problem', exc)}")]) from None
    return parse_config(data, source)


_lock = threading.Lock()
_cache: dict[str, tuple[tuple, ModelsConfig | ConfigError]] = {}


def get_config() -> ModelsConfig:
    """The current config, re-read only when the file's modification time or size changed."""
    path = str(settings.AUTOPACK_MODELS_CONFIG)
    try:
        stat = Path(path).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    with _lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != stamp:
            try:
                result = load_config(path)
            except ConfigError as exc:
                result = exc
            _cache[path] = (stamp, result)
        result = _cache[path][1]
    if isinstance(result, ConfigError):
        raise result
    return result


@functools.cache
def builtin_config() -> ModelsConfig:
    return parse_config({}, "built-in catalog")


def pricing_catalog() -> dict[str, ModelInfo]:
    """Prices to record usage with: the config's, or the built-in catalog while the file is broken.

    Usage is never refused for a config problem: the call happened and its tokens must be kept.
    """
    try:
        return get_config().models
    except ConfigError:
        return builtin_config().models


def config_stamp() -> int:
    """When models.yaml last changed (0 when it cannot be read): part of what polls compare."""
    try:
        return Path(settings.AUTOPACK_MODELS_CONFIG).stat().st_mtime_ns
    except OSError:
        return 0
