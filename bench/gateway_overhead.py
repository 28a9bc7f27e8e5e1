"""What the gateway adds to a call, beside the same call made straight to the local fake provider.

    .venv/bin/python bench/gateway_overhead.py [--calls 300] [--json]

The gateway is served as `make run` serves it, but with one gunicorn worker process (the peer's
figure, LiteLLM's proxy at 44 calls/s to 8 clients, is for one worker). The fake provider answers at
once, so every difference is the gateway's own work: authentication, routing, the run checks,
forwarding, and recording the call's usage in PostgreSQL. Calls alternate between the gateway and the
provider, through the same openai SDK. Figures:
- added per non-streamed call, p50 and p99 (target: p50 at most 5 ms);
- added before the first streamed chunk, p50 and p99 (target: p50 at most 5 ms);
- calls/s that one worker serves to 8 concurrent clients, against the provider alone (wrk, POST);
- informational: added per non-streamed call that names a run and phase (X-Autopack-Run, -Phase), which
  adds the phase's category, the run's checks and hold, and the run's totals to the work.
"""

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid

from _db import prepare_database
from fake_provider import running
from http_speed import run_plan
from llm_overhead import CONFIG, MESSAGES
from serve import Server, wrk

DATABASE = "autopack_bench_gateway"
KEY = "bench-gateway-key"
BODY = {"model": "autopack/auto", "messages": MESSAGES}
LOAD = ["-t1", "-c8", "-d5s"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed_pairs(
    gateway, bare, calls: int, stream: bool, model: str = "autopack/auto"
) -> tuple[list[float], list[float]]:
    """Milliseconds per call (or to the first streamed chunk) through the gateway and straight to the provider."""

    def once(client, model):
        started = time.perf_counter()
        if stream:
            chunks = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
            next(iter(chunks))
            elapsed = time.perf_counter() - started
            for _ in chunks:  # read to the end, so the gateway records the usage
                pass
            return elapsed * 1000
        client.chat.completions.create(model=model, messages=MESSAGES)
        return (time.perf_counter() - started) * 1000

    ours, reference = [], []
    for i in range(calls + 20):
        through, straight = once(gateway, model), once(bare, "gpt-4o")
        if i >= 20:  # the first calls open connections and fill caches
            ours.append(through)
            reference.append(straight)
    return ours, reference


def post_script(body: dict, headers: dict) -> str:
    """A wrk script that POSTs `body` as JSON with `headers`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        script.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
        for name, value in {"Content-Type": "application/json", **headers}.items():
            script.write(f'wrk.headers["{name}"] = "{value}"\n')
    return script.name


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scripts = []
    stack = contextlib.ExitStack()
    try:
        provider = stack.enter_context(running())
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
            config_file.write(CONFIG.format(url=provider))
        os.environ.update(AUTOPACK_MODELS_CONFIG=config_file.name, BENCH_FAKE_KEY="sk-bench", AUTOPACK_API_KEY=KEY)
        prepare_database(DATABASE)
        import openai

        with Server(DATABASE, workers=1) as server:
            gateway = openai.OpenAI(base_url=server.url("/v1"), api_key=KEY, max_retries=0, timeout=10)
            bare = openai.OpenAI(base_url=provider, api_key="sk-bench", max_retries=0, timeout=10)
            plain = timed_pairs(gateway, bare, args.calls, stream=False)
            streamed = timed_pairs(gateway, bare, args.calls, stream=True)
            run_id = f"bench-gateway-{uuid.uuid4().hex[:8]}"
            plan = run_plan(run_id, phases=12, tiers=3)
            plan["run"]["token_cap"] = 10**12
            status, _, answer = server.request("POST", "/runs/start", plan, {"Authorization": f"Bearer {KEY}"})
            assert status == 201, answer[:300]
            in_run = gateway.with_options(default_headers={"X-Autopack-Run": run_id, "X-Autopack-Phase": "F1"})
            with_run = timed_pairs(in_run, bare, args.calls, stream=False)
            scripts = [
                post_script(BODY, {"Authorization": f"Bearer {KEY}"}),
                post_script({**BODY, "model": "gpt-4o"}, {}),
            ]
            ours_rate = wrk(server.url("/v1/chat/completions"), [*LOAD, "-s", scripts[0]])
            bare_rate = wrk(f"{provider}/chat/completions", [*LOAD, "-s", scripts[1]])
        os.unlink(config_file.name)
    finally:
        stack.close()
        for script in scripts:
            os.unlink(script)
    result = {
        "call_p50_ms": statistics.median(plain[0]),
        "call_p99_ms": percentile(plain[0], 0.99),
        "bare_call_p50_ms": statistics.median(plain[1]),
        "bare_call_p99_ms": percentile(plain[1], 0.99),
        "first_chunk_p50_ms": statistics.median(streamed[0]),
        "first_chunk_p99_ms": percentile(streamed[0], 0.99),
        "bare_first_chunk_p50_ms": statistics.median(streamed[1]),
        "bare_first_chunk_p99_ms": percentile(streamed[1], 0.99),
        "run_call_p50_ms": statistics.median(with_run[0]),
        "bare_run_call_p50_ms": statistics.median(with_run[1]),
        "calls_per_s": ours_rate["rps"],
        "bare_calls_per_s": bare_rate["rps"],
        "bad_answers": ours_rate["bad"] + ours_rate["errors"],
    }
    if args.json:
        print(json.dumps(result))
        return
    for what, key in (("non-streamed call", "call"), ("first streamed chunk", "first_chunk")):
        added = result[f"{key}_p50_ms"] - result[f"bare_{key}_p50_ms"]
        added99 = result[f"{key}_p99_ms"] - result[f"bare_{key}_p99_ms"]
        print(
            f"{what}: gateway p50 {result[f'{key}_p50_ms']:.2f} ms, provider alone {result[f'bare_{key}_p50_ms']:.2f}"
        )
        print(f"  added: p50 {added:.2f} ms, p99 {added99:.2f} ms (target: p50 at most 5 ms)")
    added = result["run_call_p50_ms"] - result["bare_run_call_p50_ms"]
    print(f"non-streamed call in a run and phase: added p50 {added:.2f} ms (informational)")
    print(
        f"8 clients, one worker: {result['calls_per_s']:.0f} calls/s through the gateway, "
        f"{result['bare_calls_per_s']:.0f} straight to the provider (target: at least 88, twice LiteLLM's 44); "
        f"{result['bad_answers']} bad answers"
    )


if __name__ == "__main__":
    main()
