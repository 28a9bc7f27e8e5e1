"""Slow streams do not starve the dashboard: the app served as `make run` serves it, 20 streams open at once.

gunicorn runs with autopack_site/gunicorn_conf.py and two workers on the test database, and the gateway
forwards to the local fake provider, which sends each stream's chunks a second apart. While the 20
streams are open, the run's progress poll must answer as fast as it does on an idle server.
"""

import statistics
import threading
import time

import openai
import pytest

from apikeys.services import create_api_key
from runs.models import Run
from tests.alerts.conftest import worker_database_url
from tests.conftest import plan
from tests.served import gunicorn, status_of
from usage.models import LlmUsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 20
CHUNK_DELAY = 1.0  # the fake's chat stream has six events: five gaps, some 5 s a stream
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def served(service, settings):
    """The app under gunicorn as `make run` starts it, on the test database and the test's models.yaml."""
    env = {
        "DATABASE_URL": worker_database_url(),
        "AUTOPACK_MODELS_CONFIG": settings.AUTOPACK_MODELS_CONFIG,
        "AUTOPACK_API_KEY": "",
        "DEBUG": "false",
    }
    with gunicorn(env, workers=2) as server:
        yield server.port
        output = server.output()
    assert "Traceback" not in output, output


def poll_latencies(port: int, path: str, count: int, until: float | None = None) -> list[float]:
    """Milliseconds per poll, every answer a 204 (nothing changed); stops early at `until`."""
    latencies = []
    for _ in range(count):
        if until is not None and time.monotonic() > until:
            break
        started = time.perf_counter()
        status = status_of(port, path)
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 204, f"poll answered {status}"
        time.sleep(0.02)
    return latencies


def test_twenty_slow_streams_leave_the_polls_answering_at_their_usual_latency(served, provider, api, client):
    secret = create_api_key(name="agent").secret
    client.defaults["HTTP_X_API_KEY"] = secret
    api.start(plan())
    version = Run.objects.get(run_id="run-1").version
    poll = f"/dashboard/runs/run-1/progress?v={version}"
    poll_latencies(served, poll, 10)  # connections, caches and both workers warmed
    idle = poll_latencies(served, poll, 40)

    provider.chunk_delay = CHUNK_DELAY
    sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{served}/v1", api_key=secret, max_retries=0, timeout=30)
    first_chunks = threading.Barrier(STREAMS + 1, timeout=20)
    texts: dict[int, str] = {}
    failures: list[BaseException] = []

    def stream(index: int) -> None:
        try:
            parts = []
            chunks = sdk.chat.completions.create(model="autopack/auto", messages=MESSAGES, stream=True)
            for number, chunk in enumerate(chunks):
                if number == 0:
                    first_chunks.wait()
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
            texts[index] = "".join(parts)
        except BaseException as exc:
            failures.append(exc)
            first_chunks.abort()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(STREAMS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    # Every stream open and past its first chunk; each has some four seconds left.
    first_chunks.wait()
    busy = poll_latencies(served, poll, 100, until=time.monotonic() + 2.5)
    open_streams = sum(thread.is_alive() for thread in threads)
    for thread in threads:
        thread.join(timeout=30)

    assert not failures, failures
    assert open_streams == STREAMS, "the streams ended before the polls were measured"
    assert texts == dict.fromkeys(range(STREAMS), "ok")
    assert time.monotonic() - started < 5 * CHUNK_DELAY + 5, "the streams were served one after another"
    idle_median, busy_median = statistics.median(idle), statistics.median(busy)
    assert len(busy) >= 20
    assert busy_median < 3 * idle_median and busy_median < 100, (idle_median, busy_median, sorted(busy))
    # Each stream's usage is recorded before the chunk that reports it goes on to the client.
    events = LlmUsageEvent.objects.all()
    assert len(events) == STREAMS
    assert {(e.status, e.prompt_tokens, e.completion_tokens) for e in events} == {("ok", 1200, 300)}
    assert not any(e.decision.get("incomplete") for e in events)
    assert {e.sent_by for e in events} == {"agent"}
