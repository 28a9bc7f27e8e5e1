"""What LlmService adds to a call, beside a bare openai SDK call to the same local fake provider.

    .venv/bin/python bench/llm_overhead.py [--calls 300] [--json]

The fake provider runs in its own process and answers at once, so the difference is LlmService's
own work: routing, notes lookup, recording the usage event and its totals in PostgreSQL.
Calls alternate between the two clients. No target for LlmService alone: the figure is informational
(the gateway's targets are measured by bench/gateway_overhead.py).
"""

import argparse
import json
import os
import statistics
import tempfile
import time

from _db import use_database
from fake_provider import running

CONFIG = """
providers:
  openai: {{base_url: "{url}", api_key_env: BENCH_FAKE_KEY}}
complexity_models:
  medium: {{builder: gpt-4o, auditor: gpt-4o}}
  high: {{builder: gpt-4o, auditor: gpt-4o}}
  low: {{builder: gpt-4o-mini, auditor: gpt-4o-mini}}
"""
MESSAGES = [{"role": "user", "content": "Say ok."}]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with running() as url:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
            config_file.write(CONFIG.format(url=url))
        os.environ["AUTOPACK_MODELS_CONFIG"] = config_file.name
        os.environ["BENCH_FAKE_KEY"] = "sk-bench"
        use_database("autopack_bench_ingest")
        import openai

        from routing.llm_service import LlmService

        service = LlmService(timeout=10)
        bare = openai.OpenAI(base_url=url, api_key="sk-bench", timeout=10)
        ours, reference = [], []
        for i in range(args.calls + 20):
            started = time.perf_counter()
            service.complete("builder", "general", "medium", MESSAGES)
            middle = time.perf_counter()
            bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            if i >= 20:  # the first calls open connections and fill caches
                ours.append((middle - started) * 1000)
                reference.append((time.perf_counter() - middle) * 1000)
        os.unlink(config_file.name)
    result = {"service_ms": statistics.median(ours), "bare_ms": statistics.median(reference)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"LlmService.complete: median {result['service_ms']:.2f} ms")
    print(f"bare openai SDK call: median {result['bare_ms']:.2f} ms")
    print(f"added per call: {result['service_ms'] - result['bare_ms']:.2f} ms (informational)")


if __name__ == "__main__":
    main()
