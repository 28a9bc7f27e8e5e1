"""Each provider fault tried once through LlmService and through the gateway, and what came of it.

    .venv/bin/python bench/provider_faults.py [--database NAME] [--json]

Needs PostgreSQL at BENCH_POSTGRES, like the other benches (database autopack_bench_faults unless
--database names another); not part of `make bench`, as it measures no speed against a target.

The tests' fake provider (tests/routing/fake_provider.py) stands in for every provider, on loopback; a
provider that is down is a bound port nobody listens on. The gateway is served in this process by
Django's threaded server and called with the openai SDK, as an agent calls it; it shares this process
so that its provider timeout can be shortened like LlmService's: attempts time out after TIMEOUT
seconds here, so the slow fault costs one second rather than two minutes.

A general call (chain gpt-4o, then claude-haiku-4-5, then gemini-2.5-flash) meets the fault on its
first model, through LlmService and the gateway, streamed and not; a critical one (security_auth_change
on claude-sonnet-4-5) meets it on its only model, through LlmService and the gateway. Every case starts
with no provider cooling down. Per case: what answered (or the error), the provider attempts made, the
usage rows recorded (the 500 reports the tokens it used), whether the dashboard's provider strip shows
the provider cooling down and until when, and the time the call took.
"""

import argparse
import html
import json
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from _db import ROOT, use_database

TIMEOUT = 1.0
KEY = "bench-faults-key"
MESSAGES = [{"role": "user", "content": "Say ok."}]
CRITICAL = "security_auth_change"
ROUTING = """
complexity_models:
  low: {{builder: gpt-4o-mini, auditor: gpt-4o-mini}}
  medium: {{builder: gpt-4o, auditor: gpt-4o}}
  high: {{builder: claude-sonnet-4-5, auditor: claude-opus-4-1}}
category_models:
  security_auth_change: {{builder_model_override: claude-sonnet-4-5}}
quota_routing: {{enabled: true, never_fallback_categories: [security_auth_change]}}
fallback_strategy: {{default_fallbacks: [claude-haiku-4-5, gemini-2.5-flash]}}
providers:
  openai: {{base_url: "{openai}", api_key_env: BENCH_FAKE_KEY}}
  anthropic: {{base_url: "{anthropic}", api_key_env: BENCH_FAKE_KEY}}
  google: {{base_url: "{google}", api_key_env: BENCH_FAKE_KEY}}
"""
# What the fake answers the failing model: (status, body, headers, delay); None: its provider is down.
FAULTS = {
    "down": None,
    "slow": (200, None, {}, TIMEOUT + 2),
    "429 Retry-After 42": (429, {"error": {"message": "slow down"}}, {"Retry-After": "42"}, 0),
    "500": (
        500,
        {"error": {"message": "upstream died"}, "usage": {"prompt_tokens": 800, "completion_tokens": 0}},
        {},
        0,
    ),
    "200, not JSON": (200, b"<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"}, 0),
    "200, not OpenAI's shape": (200, {"detail": "upstream unavailable"}, {}, 0),
}
# Which model meets the fault, on which provider, for each kind of call.
FIRST = {"general": ("gpt-4o", "openai"), "critical": ("claude-sonnet-4-5", "anthropic")}
PATHS = ("service", "gateway", "gateway stream")
COLUMNS = ("fault", "path", "call", "outcome", "attempts", "usage rows", "cooldown shown", "time")


def configs(fake_url: str, dead_url: str) -> dict[str, str]:
    """A models.yaml per provider that may be down (and one with none down), each in a file of its own."""
    paths = {}
    for down in ("", "openai", "anthropic"):
        urls = {name: dead_url if name == down else fake_url for name in ("openai", "anthropic", "google")}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
            file.write(ROUTING.format(**urls))
        paths[down] = file.name
    return paths


def serve_in_thread():
    """The app on a free loopback port, served from this process; returns (server, base URL)."""
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def strip_shows_cooling(base_url: str, provider: str) -> str:
    """What the provider strip (the mapping panel's poll) says of a provider cooling down, or ""."""
    with urllib.request.urlopen(f"{base_url}/dashboard/models/status?period=week", timeout=10) as answer:
        page = answer.read().decode()
    for status, name, text in re.findall(r'<li class="strip-(\w+)"><strong>([^<]+)</strong>(.*?)</li>', page):
        if name == provider and status == "cooling":
            shown = html.unescape(re.sub(r"<[^>]+>", "", text))
            return re.search(r"cooling down until [\d:]+ UTC", shown).group(0)
    return ""


@dataclass
class Rig:
    """What every case calls through and looks at."""

    fake: object
    sdk: object
    service: object
    base_url: str
    # models.yaml with each provider down in turn ("": none down).
    configs: dict[str, str]

    def call(self, path: str, category: str | None) -> tuple[str, str]:
        """One builder call: (the model that answered, what it says failed first)."""
        if path == "service":
            done = self.service.complete("builder", category, "medium", MESSAGES)
            return done.model, "; ".join(done.failed_attempts)
        asked = {
            "model": "autopack/auto",
            "messages": MESSAGES,
            "extra_headers": {"X-Autopack-Category": category or ""},
        }
        if path == "gateway stream":
            # Read to the end: the usage comes in the last chunk.
            with self.sdk.chat.completions.with_streaming_response.create(**asked, stream=True) as raw:
                list(raw.parse())
        else:
            raw = self.sdk.chat.completions.with_raw_response.create(**asked)
            raw.parse()
        # The decision header names the failed attempts after "(after N failed: ".
        return raw.headers["X-Autopack-Model"], raw.headers["X-Autopack-Decision"].partition("(after ")[2]


def run_case(rig: Rig, fault: str, path: str, kind: str) -> dict:
    """One call meeting one fault, from a start with no provider cooling down; the row of the table."""
    from django.conf import settings
    from openai import APIStatusError

    from routing.calls import LlmError
    from routing.models import ProviderCooldown
    from routing.router import RoutingError
    from routing.services import end_cooldown
    from usage.models import LlmUsageEvent

    model, provider = FIRST[kind]
    for name in ("openai", "anthropic", "google"):
        end_cooldown(provider=name)
    settings.AUTOPACK_MODELS_CONFIG = rig.configs[provider if FAULTS[fault] is None else ""]
    if FAULTS[fault] is not None:
        rig.fake.script(model, FAULTS[fault])
    requests_before, rows_before = len(rig.fake.requests), LlmUsageEvent.objects.count()
    started = time.perf_counter()
    try:
        outcome, told = rig.call(path, CRITICAL if kind == "critical" else None)
    except (LlmError, RoutingError) as exc:
        outcome, told = type(exc).__name__, str(exc)
    except APIStatusError as exc:
        outcome, told = f"{exc.status_code} {exc.body.get('code')}", exc.body.get("message", "")
    took = time.perf_counter() - started
    # The down provider's attempts never reach the fake: each is told as a connection that failed.
    attempts = len(rig.fake.requests) - requests_before + told.count("could not connect")
    cooldown = ProviderCooldown.objects.filter(provider=provider).first()
    shown = strip_shows_cooling(rig.base_url, provider)
    seconds = round((cooldown.until - cooldown.updated_at).total_seconds()) if cooldown else 0
    return {
        "fault": fault,
        "path": path,
        "call": kind,
        "outcome": outcome,
        "attempts": attempts,
        "usage rows": LlmUsageEvent.objects.count() - rows_before,
        "cooldown shown": f"yes, {seconds} s ({shown.removeprefix('cooling down ')})" if shown else "no",
        "time": f"{took * 1000:.0f} ms",
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="autopack_bench_faults")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    sys.path.insert(0, str(ROOT))
    from tests.routing.fake_provider import FakeProvider

    fake = FakeProvider()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    files = configs(fake.url, f"http://127.0.0.1:{dead.getsockname()[1]}/v1")
    os.environ.update(AUTOPACK_MODELS_CONFIG=files[""], BENCH_FAKE_KEY="sk-bench", AUTOPACK_API_KEY=KEY)
    server = None
    try:
        use_database(args.database)
        import openai

        from autopack_site import gateway
        from routing.llm_service import LlmService

        server, base_url = serve_in_thread()
        # The gateway's answers of 502 and 504 are what this measures, not news for the log.
        logging.getLogger("django.request").setLevel(logging.CRITICAL)
        gateway.TIMEOUT_SECONDS = TIMEOUT
        sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=30)
        rig = Rig(fake, sdk, LlmService(timeout=TIMEOUT), base_url, files)
        # Connections opened and caches filled before anything is timed.
        for path in PATHS:
            rig.call(path, None)
        rows = [
            run_case(rig, fault, path, kind)
            for fault in FAULTS
            for kind in FIRST
            for path in (PATHS if kind == "general" else PATHS[:2])
        ]
    finally:
        if server is not None:
            server.shutdown()
        fake.close()
        dead.close()
        for name in files.values():
            Path(name).unlink()
    if args.json:
        print(json.dumps(rows))
        return
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row[column]) for column in COLUMNS) + " |")


if __name__ == "__main__":
    main()
