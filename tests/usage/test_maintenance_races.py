import contextlib
import io
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.models import Sum

from autopack_site import clock
from tests.usage.conftest import NOW, event
from usage import maintenance
from usage.models import LlmUsageEvent, RunUsageBucket, UsageBucket
from usage.recording import record_usage_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def costs():
    return (
        LlmUsageEvent.objects.aggregate(s=Sum("cost_usd"))["s"],
        UsageBucket.objects.filter(size="hour").aggregate(s=Sum("cost_usd"))["s"],
        UsageBucket.objects.filter(size="day").aggregate(s=Sum("cost_usd"))["s"],
        RunUsageBucket.objects.aggregate(s=Sum("cost_usd"))["s"],
    )


def run_in_threads(*targets):
    """Run each target in a thread of its own; return the errors they raised."""
    errors = []

    def guarded(target):
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - reported below, the test fails on any
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_reprices_at_once_leave_the_buckets_equal_to_their_events(models_config, monkeypatch):
    with clock.frozen_at(NOW):
        record_usage_events(
            [event(request_id=f"c{i}", run_id="r1", phase_id="P1") for i in range(200)], atomic_batch=True
        )
    models_config({"models": {"gpt-4o": {"provider": "openai", "input_per_mtok": 3, "output_per_mtok": 12}}})
    # Both reprices price their first row, then wait for each other (at most 2 s): without row locks
    # both have read the old costs by then and both add the same delta.
    both_reading, priced = threading.Barrier(2), threading.local()
    real_cost = maintenance.new_cost

    def meet_then_price(row, catalog):
        if not getattr(priced, "once", False):
            priced.once = True
            with contextlib.suppress(threading.BrokenBarrierError):
                both_reading.wait(timeout=2)
        return real_cost(row, catalog)

    monkeypatch.setattr(maintenance, "new_cost", meet_then_price)

    def reprice():
        call_command("reprice_usage", "--since=2026-01-01", stdout=io.StringIO())

    errors = run_in_threads(reprice, reprice)
    assert errors == []
    events, hours, days, runs = costs()
    assert events == hours == days == runs == Decimal(200 * (100 * 3 + 50 * 12)) / 1_000_000


def test_rebuild_while_events_arrive_loses_none_of_them(models_config):
    with clock.frozen_at(NOW):
        record_usage_events([event(request_id=f"seed{i}", run_id="r1") for i in range(50)], atomic_batch=True)
    UsageBucket.objects.filter(size="hour").update(total_tokens=1)
    stop = threading.Event()

    def record():
        try:
            with clock.frozen_at(NOW):
                for i in range(200):
                    record_usage_events([event(request_id=f"live{i}", run_id="r1")], atomic_batch=True)
        finally:
            stop.set()

    def rebuild_until_done():
        while not stop.is_set():
            call_command("rebuild_usage_totals", stdout=io.StringIO())

    assert run_in_threads(record, rebuild_until_done) == []
    expected = 250 * 150
    assert LlmUsageEvent.objects.aggregate(s=Sum("total_tokens"))["s"] == expected
    assert UsageBucket.objects.filter(size="hour").aggregate(s=Sum("total_tokens"))["s"] == expected
    assert RunUsageBucket.objects.aggregate(s=Sum("total_tokens"))["s"] == expected
