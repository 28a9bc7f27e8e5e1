"""The built-in model catalog: each model's provider and price in USD per million tokens.

A `models` section in config/models.yaml overrides or extends it, so an original Autopack file,
which has no catalog, loads unchanged. Prices are list prices for standard (non-batch) calls.
"""

from typing import NamedTuple


class CatalogEntry(NamedTuple):
    """A model's provider, its prices in USD per million tokens, and its sizes in tokens."""

    provider: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None
    context_window: int | None
    max_output_tokens: int | None


BUILTIN_MODELS: dict[str, CatalogEntry] = {
    # OpenAI
    "gpt-5.1": CatalogEntry("openai", 1.25, 10.00, 0.125, 400_000, 128_000),
    "gpt-5.1-codex": CatalogEntry("openai", 1.25, 10.00, 0.125, 400_000, 128_000),
    "gpt-5.1-codex-max": CatalogEntry("openai", 1.25, 10.00, 0.125, 400_000, 128_000),
    "gpt-5": CatalogEntry("openai", 1.25, 10.00, 0.125, 400_000, 128_000),
    "gpt-5-mini": CatalogEntry("openai", 0.25, 2.00, 0.025, 400_000, 128_000),
    "gpt-5-nano": CatalogEntry("openai", 0.05, 0.40, 0.005, 400_000, 128_000),
    "gpt-4.1": CatalogEntry("openai", 2.00, 8.00, 0.50, 1_047_576, 32_768),
    "gpt-4.1-mini": CatalogEntry("openai", 0.40, 1.60, 0.10, 1_047_576, 32_768),
    "gpt-4.1-nano": CatalogEntry("openai", 0.10, 0.40, 0.025, 1_047_576, 32_768),
    "gpt-4o": CatalogEntry("openai", 2.50, 10.00, 1.25, 128_000, 16_384),
    "gpt-4o-2024-08-06": CatalogEntry("openai", 2.50, 10.00, 1.25, 128_000, 16_384),
    "gpt-4o-2024-11-20": CatalogEntry("openai", 2.50, 10.00, 1.25, 128_000, 16_384),
    "gpt-4o-2024-05-13": CatalogEntry("openai", 5.00, 15.00, None, 128_000, 4_096),
    "gpt-4o-mini": CatalogEntry("openai", 0.15, 0.60, 0.075, 128_000, 16_384),
    "gpt-4o-mini-2024-07-18": CatalogEntry("openai", 0.15, 0.60, 0.075, 128_000, 16_384),
    "gpt-4-turbo": CatalogEntry("openai", 10.00, 30.00, None, 128_000, 4_096),
    "gpt-4-turbo-2024-04-09": CatalogEntry("openai", 10.00, 30.00, None, 128_000, 4_096),
    "gpt-4-turbo-preview": CatalogEntry("openai", 10.00, 30.00, None, 128_000, 4_096),
    "gpt-4": CatalogEntry("openai", 30.00, 60.00, None, 8_192, 8_192),
    "gpt-3.5-turbo": CatalogEntry("openai", 0.50, 1.50, None, 16_385, 4_096),
    "o1": CatalogEntry("openai", 15.00, 60.00, 7.50, 200_000, 100_000),
    "o1-preview": CatalogEntry("openai", 15.00, 60.00, 7.50, 128_000, 32_768),
    "o1-mini": CatalogEntry("openai", 1.10, 4.40, 0.55, 128_000, 65_536),
    "o3": CatalogEntry("openai", 2.00, 8.00, 0.50, 200_000, 100_000),
    "o3-mini": CatalogEntry("openai", 1.10, 4.40, 0.55, 200_000, 100_000),
    "o4-mini": CatalogEntry("openai", 1.10, 4.40, 0.275, 200_000, 100_000),
    # Anthropic (cached input: cache reads)
    "claude-opus-4-5": CatalogEntry("anthropic", 5.00, 25.00, 0.50, 200_000, 64_000),
    "claude-opus-4-1": CatalogEntry("anthropic", 15.00, 75.00, 1.50, 200_000, 32_000),
    "claude-opus-4-1-20250805": CatalogEntry("anthropic", 15.00, 75.00, 1.50, 200_000, 32_000),
    "claude-opus-4-20250514": CatalogEntry("anthropic", 15.00, 75.00, 1.50, 200_000, 32_000),
    "claude-opus-4": CatalogEntry("anthropic", 15.00, 75.00, 1.50, 200_000, 32_000),
    "claude-sonnet-4-5": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 64_000),
    "claude-sonnet-4-5-20250929": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 64_000),
    "claude-sonnet-4-20250514": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 64_000),
    "claude-sonnet-4": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 64_000),
    "claude-haiku-4-5": CatalogEntry("anthropic", 1.00, 5.00, 0.10, 200_000, 64_000),
    "claude-haiku-4-5-20251001": CatalogEntry("anthropic", 1.00, 5.00, 0.10, 200_000, 64_000),
    "claude-3-7-sonnet-20250219": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 64_000),
    "claude-3-7-sonnet-latest": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 64_000),
    "claude-3-5-sonnet-20241022": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 8_192),
    "claude-3-5-sonnet-20240620": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 8_192),
    "claude-3-5-sonnet-latest": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 8_192),
    "claude-3-5-sonnet": CatalogEntry("anthropic", 3.00, 15.00, 0.30, 200_000, 8_192),
    "claude-3-5-haiku-20241022": CatalogEntry("anthropic", 0.80, 4.00, 0.08, 200_000, 8_192),
    "claude-3-5-haiku-latest": CatalogEntry("anthropic", 0.80, 4.00, 0.08, 200_000, 8_192),
    "claude-3-opus-20240229": CatalogEntry("anthropic", 15.00, 75.00, 1.50, 200_000, 4_096),
    "claude-3-sonnet-20240229": CatalogEntry("anthropic", 3.00, 15.00, None, 200_000, 4_096),
    "claude-3-haiku-20240307": CatalogEntry("anthropic", 0.25, 1.25, 0.03, 200_000, 4_096),
    # Google
    "gemini-3-pro-preview": CatalogEntry("google", 2.00, 12.00, 0.20, 1_048_576, 65_536),
    "gemini-2.5-pro": CatalogEntry("google", 1.25, 10.00, 0.125, 1_048_576, 65_536),
    "gemini-2.5-flash": CatalogEntry("google", 0.30, 2.50, 0.03, 1_048_576, 65_536),
    "gemini-2.5-flash-lite": CatalogEntry("google", 0.10, 0.40, 0.01, 1_048_576, 65_536),
    "gemini-2.0-flash": CatalogEntry("google", 0.10, 0.40, 0.025, 1_048_576, 8_192),
    "gemini-2.0-flash-lite": CatalogEntry("google", 0.075, 0.30, None, 1_048_576, 8_192),
    "gemini-1.5-pro": CatalogEntry("google", 1.25, 5.00, None, 2_097_152, 8_192),
    "gemini-1.5-flash": CatalogEntry("google", 0.075, 0.30, None, 1_048_576, 8_192),
    # Zhipu AI (named in Autopack's own configs)
    "glm-4.7": CatalogEntry("zhipu", 0.60, 2.20, 0.11, 200_000, 128_000),
    "glm-4.6": CatalogEntry("zhipu", 0.60, 2.20, 0.11, 200_000, 128_000),
    "glm-4.6-20250101": CatalogEntry("zhipu", 0.60, 2.20, 0.11, 200_000, 128_000),
    "glm-4.5-20250101": CatalogEntry("zhipu", 0.60, 2.20, 0.11, 128_000, 96_000),
}

# OpenAI-compatible endpoints of the built-in providers; `providers` in the config overrides them.
BUILTIN_PROVIDERS: dict[str, dict[str, str | None]] = {
    "openai": {"base_url": None, "api_key_env": "OPENAI_API_KEY"},
    "anthropic": {"base_url": "https://api.anthropic.com/v1/", "api_key_env": "ANTHROPIC_API_KEY"},
    "google": {
        "base_url": "https://generativelanguage.googleapis.com/v1beta/openai/",
        "api_key_env": "GOOGLE_API_KEY",
    },
    "zhipu": {"base_url": "https://open.bigmodel.cn/api/paas/v4/", "api_key_env": "ZHIPUAI_API_KEY"},
}

# The original Autopack's provider keys (and other common spellings) for the providers above: an
# original models.yaml's quotas, and events that name a provider so, count as one provider.
PROVIDER_ALIASES = {
    "google_gemini": "google",
    "gemini": "google",
    "googleai": "google",
    "zhipu_glm": "zhipu",
    "zhipuai": "zhipu",
    "glm": "zhipu",
}


def canonical_provider(name: str) -> str:
    """One name per provider, whatever the case or the original's key (`google_gemini` is `google`)."""
    key = name.strip().lower()
    return PROVIDER_ALIASES.get(key, key)
