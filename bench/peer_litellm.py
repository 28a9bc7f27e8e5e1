"""The peer's figures, measured here: LiteLLM's proxy in front of the same local fake provider.

    python3 -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]'
    .venv/bin/python bench/peer_litellm.py --litellm /tmp/litellm/bin/litellm [--calls 300]

Not part of `make bench` (LiteLLM is a large install, and it is not ours). The same measurements as
bench/gateway_overhead.py, with the proxy (one worker, no database, its master key) where our gateway stands:
what it adds per non-streamed call and before the first streamed chunk, beside the provider alone, and
the calls/s its one worker serves to 8 clients.
"""

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from fake_provider import running
from gateway_overhead import LOAD, percentile, post_script, timed_pairs
from llm_overhead import MESSAGES
from serve import free_port, wrk

# The proxy's one key (it refuses to start without one); it checks it on every call, as ours does.
KEY = "sk-" + secrets.token_hex(16)
CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_base: "{url}", api_key: sk-bench}}
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--litellm", required=True, help="the litellm command of a venv with litellm[proxy]")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    stack = contextlib.ExitStack()
    proxy = None
    scripts = []
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config:
        pass
    try:
        provider = stack.enter_context(running())
        Path(config.name).write_text(CONFIG.format(url=provider))
        port = free_port()
        # Its price list from the package, not the network; no telemetry.
        env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_MASTER_KEY": KEY,
        }
        proxy = subprocess.Popen(
            [args.litellm, "--config", config.name, "--port", str(port), "--num_workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2).read()
                break
            except OSError:
                if proxy.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("LiteLLM's proxy did not start") from None
                time.sleep(0.5)
        import openai

        peer = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=10)
        bare = openai.OpenAI(base_url=provider, api_key="sk-bench", max_retries=0, timeout=10)
        plain = timed_pairs(peer, bare, args.calls, stream=False, model="gpt-4o")
        streamed = timed_pairs(peer, bare, args.calls, stream=True, model="gpt-4o")
        body = {"model": "gpt-4o", "messages": MESSAGES}
        scripts = [post_script(body, {"Authorization": f"Bearer {KEY}"}), post_script(body, {})]
        peer_rate = wrk(f"http://127.0.0.1:{port}/v1/chat/completions", [*LOAD, "-s", scripts[0]])
        bare_rate = wrk(f"{provider}/chat/completions", [*LOAD, "-s", scripts[1]])
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=30)
        stack.close()
        for name in (config.name, *scripts):
            os.unlink(name)
    for what, (ours, reference) in (("non-streamed call", plain), ("first streamed chunk", streamed)):
        added = statistics.median(ours) - statistics.median(reference)
        added99 = percentile(ours, 0.99) - percentile(reference, 0.99)
        print(
            f"{what}: LiteLLM p50 {statistics.median(ours):.2f} ms, provider alone {statistics.median(reference):.2f}"
        )
        print(f"  added: p50 {added:.2f} ms, p99 {added99:.2f} ms")
    print(
        f"8 clients, one worker: {peer_rate['rps']:.0f} calls/s through LiteLLM, "
        f"{bare_rate['rps']:.0f} straight to the provider; {peer_rate['bad'] + peer_rate['errors']} bad answers"
    )


if __name__ == "__main__":
    main()
