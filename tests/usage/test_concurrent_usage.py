import threading

import pytest
from django.db import connections
from django.db.models import Sum

from runs.models import Phase, Run
from tests.conftest import Api, plan
from tests.usage.conftest import event
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket
from usage.recording import record_usage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def test_eight_concurrent_writers_lose_nothing(client, models_config):
    """8 threads × 500 events on one run's phases: exact event, bucket and run totals."""
    Api(client).start(plan(tiers=(("T1", 4), ("T2", 4)), max_phases=8))
    threads, per_thread = 8, 500
    errors = []
    barrier = threading.Barrier(threads)

    def writer(t):
        try:
            barrier.wait()
            for i in range(per_thread):
                record_usage(
                    **event(run_id="run-1", phase_id=f"P{(i % 8) + 1}", prompt_tokens=t + 1, request_id=f"{t}-{i}")
                )
        except Exception as exc:  # noqa: BLE001 - reported below, the test fails on any
            errors.append(repr(exc))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    expected = sum((t + 1 + 50) * per_thread for t in range(threads))
    assert LlmUsageEvent.objects.count() == threads * per_thread
    assert LlmUsageEvent.objects.aggregate(s=Sum("total_tokens"))["s"] == expected
    assert UsageBucket.objects.filter(size="hour").aggregate(s=Sum("total_tokens"))["s"] == expected
    assert UsageBucket.objects.filter(size="day").aggregate(s=Sum("calls"))["s"] == threads * per_thread
    assert RunUsageBucket.objects.aggregate(s=Sum("total_tokens"))["s"] == expected
    assert Run.objects.get().tokens_used == expected
    assert Phase.objects.aggregate(s=Sum("usage_tokens"))["s"] == expected
