import csv
import io
import re

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from tests.conftest import plan
from tests.usage.conftest import event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db


def test_panel_shows_each_provider_against_its_cap(client, models_config, frozen_now):
    record_usage_events([event(prompt_tokens=4200, completion_tokens=300)], atomic_batch=True)
    page = client.get("/dashboard/usage/", {"period": "week"}).content.decode()
    assert "4.5K / 5K tokens · 90.0%" in page
    assert 'class="bar-fill level-warning"' in page and 'aria-valuenow="90.0"' in page
    # anthropic has a weekly cap but no usage: shown at 0, not hidden.
    assert "0 / 7K tokens · 0.0%" in page


def test_panel_marks_danger_and_exceeded_in_text_not_colour_alone(client, models_config, frozen_now):
    record_usage_events([event(prompt_tokens=960, completion_tokens=0)], atomic_batch=True)
    page = client.get("/dashboard/usage/panel", {"period": "day"}).content.decode()
    assert "level-danger" in page and ">danger</span>" in page
    record_usage_events([event(prompt_tokens=100, completion_tokens=0)], atomic_batch=True)
    page = client.get("/dashboard/usage/panel", {"period": "day"}).content.decode()
    assert ">exceeded</span>" in page and "cap reached" in page


def test_panel_says_when_a_provider_has_no_cap_and_when_a_cap_is_estimated(client, models_config, frozen_now):
    record_usage_events([event(provider="local", model="llama")], atomic_batch=True)
    page = client.get("/dashboard/usage/panel", {"period": "month"}).content.decode()
    assert "no cap configured" in page
    assert "cap estimated from the weekly cap" in page


def test_panel_lists_top_models_runs_and_phases_with_links(client, api, models_config, frozen_now):
    api.start(plan())
    record_usage_events(
        [event(run_id="run-1", phase_id="P2", prompt_tokens=9000), event(model="gpt-4o-mini", role="agent:scout")],
        atomic_batch=True,
    )
    page = client.get("/dashboard/usage/panel").content.decode()
    assert 'href="/dashboard/runs/run-1/">run-1 · P2</a>' in page
    assert "gpt-4o-mini" in page and "Auxiliary (agent:*)" in page
    assert '<polyline class="chart-line colour-0"' in page


def test_panel_falls_back_to_a_week_with_a_notice_for_an_unknown_period(client, models_config):
    page = client.get("/dashboard/usage/panel", {"period": "fortnight"}).content.decode()
    assert "Unknown period “fortnight”" in page and 'aria-current="true">7 days' in page


def test_panel_keeps_polling_with_its_period(client, models_config):
    page = client.get("/dashboard/usage/panel", {"period": "day"}).content.decode()
    assert re.search(r'hx-get="/dashboard/usage/panel\?period=day&amp;v=[0-9.]+" hx-trigger="every 5s"', page)


def test_an_unchanged_panel_answers_204_and_a_new_call_brings_it_back(client, models_config):
    page = client.get("/dashboard/usage/panel", {"period": "day"}).content.decode()
    version = re.search(r"v=([0-9.]+)", page).group(1)
    assert client.get("/dashboard/usage/panel", {"period": "day", "v": version}).status_code == 204
    record_usage_events([event(prompt_tokens=700)], atomic_batch=True)
    again = client.get("/dashboard/usage/panel", {"period": "day", "v": version})
    assert again.status_code == 200 and "750" in again.content.decode()


def test_csv_streams_the_windows_events(client, models_config, frozen_now):
    record_usage_events(
        [event(request_id=f"r{i}", model="custom, with comma") for i in range(3)]
        + [event(created_at="2026-01-01T00:00:00Z")],
        atomic_batch=True,
    )
    response = client.get("/dashboard/usage/events.csv", {"period": "week"})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="autopack-usage-week.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 3
    assert rows[0]["model"] == "custom, with comma" and rows[0]["total_tokens"] == "150"


def test_dashboard_grid_includes_the_usage_panel(client, models_config):
    page = client.get("/dashboard/").content.decode()
    assert 'id="usage-panel"' in page and "Download CSV" in page


def test_run_page_shows_usage_by_phase_and_model(client, api, models_config):
    api.start(plan())
    record_usage_events(
        [event(run_id="run-1", phase_id="P1"), event(run_id="run-1", phase_id="P1"), event(run_id="run-1")],
        atomic_batch=True,
    )
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert "LLM calls by phase and model" in page
    assert '<td data-label="Phase">P1</td><td data-label="Model">gpt-4o' in page and "(no phase)" in page
    assert "$0.0015" in page


def test_the_panel_is_kept_per_version_and_shows_the_next_call_at_once(client, models_config, frozen_now):
    record_usage_events([event(prompt_tokens=1000, completion_tokens=0)], atomic_batch=True)
    page = client.get("/dashboard/usage/panel", {"period": "week"}).content
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/dashboard/usage/panel", {"period": "week"}).content
    # The version only: the same bytes, not computed or rendered again.
    assert again == page and len(queries) == 1
    record_usage_events([event(prompt_tokens=2000, completion_tokens=0)], atomic_batch=True)
    changed = client.get("/dashboard/usage/panel", {"period": "week"}).content.decode()
    assert "3K / 5K tokens" in changed
    # Another period is another panel.
    assert client.get("/dashboard/usage/panel", {"period": "day"}).content != changed.encode()
