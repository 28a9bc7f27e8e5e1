"""How long the router's select() takes with 10 million usage events behind its quota reads.

    .venv/bin/python bench/select_speed.py [--json]   (after bench/usage_scale.py has seeded its large database)

Prints select() with its quota reads cached (the normal case: they are kept a few seconds), beside
the reference of one uncached quota read over the same events. Target: select() p99 under 0.1 ms.
"""

import json
import os
import statistics
import sys
import tempfile
import time

from _db import use_database

BENCH_CONFIG = """
complexity_models:
  medium: {builder: gpt-4o, auditor: gpt-4o}
  high: {builder: claude-sonnet-4-5, auditor: claude-opus-4-1}
  low: {builder: gpt-4o-mini, auditor: gpt-4o-mini}
category_models:
  security_auth_change: {builder_model_override: claude-sonnet-4-5, auditor_model_override: claude-opus-4-1}
  docs: {builder_model_override: gpt-4o-mini}
provider_quotas:
  openai: {daily_token_cap: 900000000000, weekly_token_cap: 900000000000, monthly_token_cap: 900000000000}
  anthropic: {weekly_token_cap: 900000000000}
  google: {weekly_token_cap: 900000000000}
quota_routing: {enabled: true, never_fallback_categories: [security_auth_change]}
fallback_strategy:
  default_fallbacks: [gemini-2.5-flash, claude-haiku-4-5]
"""


def main():
    # Caps far above the seeded usage: the quota reads run in full, and every call is routed.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
        config_file.write(BENCH_CONFIG)
    os.environ["AUTOPACK_MODELS_CONFIG"] = config_file.name
    use_database("autopack_bench_usage_large")
    from routing.config import get_config
    from routing.quotas import forget_cached_states, provider_states
    from routing.router import select
    from usage.models import LlmUsageEvent

    events = LlmUsageEvent.objects.count()
    config = get_config()
    cold = []
    for _ in range(10):
        forget_cached_states()
        started = time.perf_counter()
        provider_states(config)
        cold.append((time.perf_counter() - started) * 1000)
    select("builder", "general", "medium")
    cases = [("builder", "general", "medium"), ("auditor", "security_auth_change", "high"), ("builder", "docs", "low")]
    warm = []
    for _ in range(2000):
        for case in cases:
            started = time.perf_counter()
            select(*case)
            warm.append((time.perf_counter() - started) * 1000)
    p99 = sorted(warm)[int(len(warm) * 0.99)]
    if "--json" in sys.argv:
        print(json.dumps({"events": events, "median": statistics.median(warm), "p99": p99, "cold": cold}))
        return
    print(f"usage events behind the quota reads: {events:,}")
    print(f"select(), quota reads cached:      median {statistics.median(warm):.3f} ms, p99 {p99:.3f} ms")
    print(f"reference: one uncached quota read: median {statistics.median(cold):.2f} ms")
    print(f"target p99 under 0.1 ms: {'met' if p99 < 0.1 else 'NOT met'}")


if __name__ == "__main__":
    main()
