"""The query count of every fragment the dashboard polls, pinned at a run of 12 phases and of 500.

Each open tab polls these every few seconds: a query per phase, tier, issue, note or run would turn a
large run into hundreds of queries a poll. Counts are exact, so any new query is a decision.
Quota reads are cached for a few seconds in each process; every measurement starts uncached.
"""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from alerts.services import raise_alert
from autopack_site import clock
from notes.services import add_note
from routing.quotas import forget_cached_states
from routing.router import forget_cached_overrides
from runs.models import Run
from tests.conftest import plan
from tests.routing.conftest import ROUTING
from tests.usage.conftest import NOW, event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

SIZES = pytest.mark.parametrize("phases", [12, 500], ids=["12 phases", "500 phases"])


@pytest.fixture
def world(api, models_config, settings, tmp_path):
    """Build a run part-way through: every fourth phase done with an issue, one running, usage on every phase."""
    models_config(ROUTING)
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "notes.md")

    def build(phases: int) -> Run:
        half = phases // 2
        api.start(plan(tiers=(("T1", half), ("T2", phases - half)), max_phases=phases))
        for n in range(1, phases + 1, 4):
            assert api.move("run-1", f"P{n}", "COMPLETE").status_code == 200
            issue = {"issue_key": f"k{n}", "severity": "major" if n % 8 == 1 else "minor"}
            assert api.post(f"/runs/run-1/phases/P{n}/record_issue", issue).status_code == 201
        assert api.move("run-1", "P2", "EXECUTING").status_code == 200
        usage = [event(run_id="run-1", phase_id=f"P{n}", request_id=f"q{n}") for n in range(1, phases + 1)]
        usage.append(event(provider="anthropic", model="claude-sonnet-4-5", role="auditor", request_id="other"))
        assert record_usage_events(usage, atomic_batch=True).imported == phases + 1
        for text in ("Keep the schema", "Prefer small commits", "Ask before deleting"):
            add_note(text=text, run_id="run-1")
        add_note(text="For every run")
        raise_alert(kind=Alert.Kind.QUOTA, subject="openai day", threshold=80, window_start=NOW, message="past 80%")
        api.start(plan(run_id="run-2"))
        return Run.objects.get(run_id="run-1")

    return build


# Each fragment as the page polls it: name -> (URL, query string, expected status).
FRAGMENTS = {
    "run progress, unchanged": ("/dashboard/runs/run-1/progress", {"v": "{version}", "rows": 1}, 204),
    "run progress, every row changed": ("/dashboard/runs/run-1/progress", {"v": 0, "rows": 1}, 200),
    "run progress on the dashboard, changed": ("/dashboard/runs/run-1/progress", {"v": 0, "rows": 0}, 200),
    "usage panel, unchanged": ("/dashboard/usage/panel", {"v": "{usage_version}"}, 204),
    "usage panel": ("/dashboard/usage/panel", {}, 200),
    "usage panel, a day": ("/dashboard/usage/panel", {"period": "day"}, 200),
    "mapping status, unchanged": ("/dashboard/models/status", {"v": "{mapping_version}"}, 204),
    "mapping status": ("/dashboard/models/status", {}, 200),
    "mapping status of a run": ("/dashboard/models/status", {"scope": "run", "run": "run-1"}, 200),
    "notes list of a run, unchanged": ("/dashboard/notes/list", {"run": "run-1", "v": "{notes_version}"}, 204),
    "notes list of a run": ("/dashboard/notes/list", {"run": "run-1"}, 200),
    "notes list for every run": ("/dashboard/notes/list", {}, 200),
    "runs list, unchanged": ("/dashboard/runs/list", {"v": "{list_version}"}, 204),
    "runs list, changed": ("/dashboard/runs/list", {"v": "stale"}, 200),
    "runs list of active runs, changed": ("/dashboard/runs/list", {"state": "active", "v": "stale"}, 200),
    "alerts, unchanged": ("/dashboard/alerts/panel", {"v": "{alerts_version}"}, 204),
    "alerts": ("/dashboard/alerts/panel", {}, 200),
}

PINNED = {
    # The run's version only.
    "run progress, unchanged": 1,
    # The version, the run, its changed phases and their issues (one prefetch), then progress: its
    # tiers, one aggregate over its phases, its current phase and the start times of those under way.
    "run progress, every row changed": 8,
    "run progress on the dashboard, changed": 6,
    # Its version only: the latest event's id (the models.yaml date and the minute need no query).
    "usage panel, unchanged": 1,
    # The version, the window's totals (raw events at its partial hours, hourly and daily buckets
    # between: five queries for a week, three for a day), the top runs and phases, whether those are
    # demo runs, the usage by sender, the chart's buckets, the demo totals and whether any demo run exists.
    "usage panel": 13,
    "usage panel, a day": 11,
    # The version, then uncached quota reads (day, week and month totals, then cooldowns; in use
    # cached for a few seconds), the overrides routing reads (cached too), the cells' own overrides
    # and the latest changes.
    "mapping status": 13,
    "mapping status of a run": 13,
    # Its version only: the latest override change, the cooldowns and the latest event, in one query.
    "mapping status, unchanged": 1,
    # Its version only: the count of the run's notes and their latest change, in one query.
    "notes list of a run, unchanged": 1,
    # The version, then the latest notes.
    "notes list of a run": 2,
    "notes list for every run": 2,
    # The runs' count, versions and latest activity: the list's version.
    "runs list, unchanged": 1,
    # The version, the page of runs, their phase counts and their costs.
    "runs list, changed": 4,
    "runs list of active runs, changed": 4,
    # Its version only: the open count, the count and the latest change of any alert, in one query.
    "alerts, unchanged": 1,
    # The version, then the newest open alerts.
    "alerts": 2,
}


@SIZES
def test_every_polled_fragment_makes_a_fixed_number_of_queries(client, world, phases):
    with clock.frozen_at(NOW):
        run = world(phases)
        page = client.get("/dashboard/runs/run-1/progress", {"v": 0, "rows": 1}).content.decode()
        assert len(re.findall(r'<tbody id="phase-\d+"', page)) == phases
        notes = client.get("/dashboard/notes/list", {"run": "run-1"}).content.decode()
        assert "Keep the schema" in notes and "For every run" not in notes
        notes_version = re.search(r"v=([^\"&]+)\"", notes).group(1)
        runs_list = client.get("/dashboard/runs/list").content.decode()
        list_version = re.search(r"v=([^\"&]+)\"", runs_list).group(1)
        usage_panel = client.get("/dashboard/usage/panel").content.decode()
        usage_version = re.search(r"v=([^\"&]+)\"", usage_panel).group(1)
        status = client.get("/dashboard/models/status", {"period": "week"}).content.decode()
        mapping_version = re.search(r"v=(week:[^\"&]+)", status).group(1)
        alerts = client.get("/dashboard/alerts/panel").content.decode()
        alerts_version = re.search(r"v=([^\"&]+)\"", alerts).group(1)
        counts = {}
        for name, (url, params, status) in FRAGMENTS.items():
            versions = {
                "version": run.version,
                "list_version": list_version,
                "usage_version": usage_version,
                "mapping_version": mapping_version,
                "notes_version": notes_version,
                "alerts_version": alerts_version,
            }
            params = {k: str(v).format(**versions) for k, v in params.items()}
            forget_cached_states()
            forget_cached_overrides()
            cache.clear()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, params)
            assert response.status_code == status, (name, response.content[:300])
            counts[name] = len(queries)
    assert counts == PINNED


@SIZES
def test_progress_between_changes_costs_the_runs_row_only(client, api, world, phases):
    """A run's progress is kept per version: repeated status and dashboard polls read the run alone."""
    with clock.frozen_at(NOW):
        world(phases)
        first = client.get("/dashboard/runs/run-1/status").json()
        with CaptureQueriesContext(connection) as queries:
            again = client.get("/dashboard/runs/run-1/status").json()
        assert len(queries) == 1 and again == first
        with CaptureQueriesContext(connection) as queries:
            client.get("/dashboard/runs/run-1/progress", {"v": 0, "rows": 0})
        # Its version, then the run's row.
        assert len(queries) == 2
        assert api.move("run-1", "P2", "COMPLETE").status_code == 200
        with CaptureQueriesContext(connection) as queries:
            moved = client.get("/dashboard/runs/run-1/status").json()
        assert len(queries) == 5
        assert moved["completed_phases"] == first["completed_phases"] + 1
