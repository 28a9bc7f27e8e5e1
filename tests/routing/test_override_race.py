"""Several people setting one override cell at once: the last write wins, every change is logged."""

import threading

import pytest
from django.db import connections
from django.test import Client

from routing.models import ModelOverride, OverrideChange

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]

MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "o3", "o4-mini")


def _set_at_once(category: str, models=MODELS) -> list[int]:
    """Eight clients post one new cell at the same moment; their statuses."""
    barrier = threading.Barrier(len(models))
    statuses = []

    def change(model):
        client = Client()
        body = {"scope": "global", "role": "builder", "category": category, "complexity": "low", "model": model}
        try:
            barrier.wait()
            response = client.post("/dashboard/models/override", body, content_type="application/json")
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=change, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_eight_clients_creating_one_cell_never_get_a_500(routing):
    for round_ in range(5):
        category = f"docs{round_}"
        assert _set_at_once(category) == [200] * len(MODELS)
        override = ModelOverride.objects.get(category=category)
        log = list(OverrideChange.objects.filter(category=category).order_by("id"))
        assert len(log) == len(MODELS)
        # Each change names the model it replaced: the log is one chain ending in the stored model.
        assert log[0].old_model == ""
        assert [c.old_model for c in log[1:]] == [c.new_model for c in log[:-1]]
        assert log[-1].new_model == override.model


def test_two_people_changing_one_existing_cell_both_land_in_the_log_and_the_last_wins(routing):
    assert _set_at_once("docs", ("o3",)) == [200]
    for _ in range(5):
        stored = ModelOverride.objects.get(category="docs").model
        last = OverrideChange.objects.latest("id").id
        assert _set_at_once("docs", ("gpt-4o", "claude-sonnet-4-5")) == [200, 200]
        changes = list(OverrideChange.objects.filter(id__gt=last).order_by("id"))
        assert {c.new_model for c in changes} == {"gpt-4o", "claude-sonnet-4-5"}
        # The second change replaced the first, which replaced what was stored: one chain, ending in the cell.
        assert [c.old_model for c in changes] == [stored, changes[0].new_model]
        assert ModelOverride.objects.get(category="docs").model == changes[1].new_model
