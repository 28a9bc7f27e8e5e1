import threading

import pytest
from django.db import connections
from django.test import Client

from runs.models import Run, Tier
from tests.conftest import Api, plan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def test_concurrent_executors_never_lose_a_phase_update():
    """Eight threads each drive their own phases of one run; the run's sums and end state are exact."""
    threads, per_thread = 8, 3
    api = Api(Client())
    api.start(plan(tiers=tuple((f"T{t}", per_thread) for t in range(threads)), max_phases=threads * per_thread))
    errors = []
    barrier = threading.Barrier(threads)

    def executor(t):
        client = Api(Client())
        try:
            barrier.wait()
            for k in range(per_thread):
                phase_id = f"P{t * per_thread + k + 1}"
                for state, tokens in (("EXECUTING", 10), ("GATE", 60), ("COMPLETE", 100)):
                    response = client.move("run-1", phase_id, state, tokens_used=tokens)
                    if response.status_code != 200:
                        errors.append(response.content)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=executor, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    run = Run.objects.get()
    assert run.tokens_used == threads * per_thread * 100
    assert run.state == "DONE_SUCCESS"
    assert set(Tier.objects.values_list("state", flat=True)) == {"COMPLETE"}
    assert run.version == 1 + threads * per_thread * 3
