import json
import random
import threading
import urllib.error
import urllib.request

import pytest
from django.db.models import Sum

from tests.usage.conftest import event
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def post(url: str, body: dict) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our live server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_overlapping_batches_in_different_orders_count_each_call_once(live_server, models_config):
    """8 clients post batches sharing request ids, each in its own order: no 5xx, nothing counted twice."""
    ids = [f"shared-{i}" for i in range(80)]
    calls = {rid: event(request_id=rid, run_id="r1", phase_id=f"P{i % 3}") for i, rid in enumerate(ids)}
    statuses, barrier = [], threading.Barrier(8)

    def client(seed):
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(12):
            chosen = rng.sample(ids, 40)
            statuses.append(post(f"{live_server.url}/api/usage", {"events": [calls[rid] for rid in chosen]}))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(statuses) == 8 * 12
    assert set(statuses) <= {200, 201}, sorted(statuses)
    assert LlmUsageEvent.objects.count() == len(ids)
    assert UsageBucket.objects.filter(size="hour").aggregate(s=Sum("calls"))["s"] == len(ids)
    assert UsageBucket.objects.filter(size="day").aggregate(s=Sum("total_tokens"))["s"] == 150 * len(ids)
    assert RunUsageBucket.objects.aggregate(s=Sum("calls"))["s"] == len(ids)
