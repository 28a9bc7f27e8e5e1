import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing.quotas import forget_cached_states
from routing.router import forget_cached_overrides
from tests.conftest import plan

pytestmark = pytest.mark.django_db


def test_root_redirects_to_the_dashboard(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/dashboard/"


def test_dashboard_without_runs_says_how_to_start_one(client):
    page = client.get("/dashboard/").content.decode()
    assert "No runs yet" in page and "POST /runs/start" in page


def test_dashboard_selected_run_lives_in_the_url(api, client):
    api.start(plan(run_id="a"))
    api.start(plan(run_id="b"))
    page = client.get("/dashboard/", {"run": "a"}).content.decode()
    assert '<option value="a" selected>' in page
    assert "<title>a · RUN_CREATED · 0.0% · Autopack Dashboard</title>" in page


def test_dashboard_names_an_unknown_selected_run(api, client):
    api.start()
    page = client.get("/dashboard/", {"run": "gone"}).content.decode()
    assert "No run named “gone”" in page


def test_the_grid_has_its_four_panels_and_no_placeholder(client, api):
    api.start()
    page = client.get("/dashboard/").content.decode()
    for panel in ('id="run-summary"', 'id="usage-panel"', 'id="mapping-panel"', 'id="helpers-panel"'):
        assert panel in page
    assert "Not available yet" not in page


def test_run_page_lists_tiers_phases_and_recorded_issues(api, client):
    api.start()
    api.move("run-1", "P1", "EXECUTING", tokens_used=12_345, builder_attempts=2)
    api.post(
        "/runs/run-1/phases/P1/record_issue",
        {"issue_key": "weak-hash", "severity": "major", "source": "auditor", "evidence_refs": ["auth.py:9"]},
    )
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert "Tier 0 · Tier T1" in page and "Phase 4" in page
    assert "weak-hash" in page and "auth.py:9" in page and "seen 1×" in page
    assert "12.35K" in page and "2 / 0" in page
    assert 'role="progressbar"' in page and 'aria-valuenow="0.0"' in page
    assert "<title>run-1 · PHASE_EXECUTION · 0.0% · Autopack</title>" in page


def test_run_page_escapes_what_the_executor_sent(api, client):
    body = plan()
    body["phases"][0]["name"] = "<script>alert(1)</script>"
    api.start(body)
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unknown_run_page_is_404(client):
    assert client.get("/dashboard/runs/nope/", headers={"Accept": "text/html"}).status_code == 404


def test_token_bar_turns_to_warning_and_danger(api, client):
    api.start(plan(token_cap=1000))
    api.move("run-1", "P1", "EXECUTING", tokens_used=850)
    assert 'class="bar-fill level-warning"' in client.get("/dashboard/runs/run-1/").content.decode()
    api.move("run-1", "P1", "EXECUTING", tokens_used=950)
    page = client.get("/dashboard/runs/run-1/").content.decode()
    assert 'class="bar-fill level-danger"' in page and "Over 90% of the token cap" in page


def poll(client, run_id, version, rows=1):
    return client.get(f"/dashboard/runs/{run_id}/progress", {"v": version, "rows": rows})


def version_of(page: str) -> int:
    return int(re.search(r'data-version="(\d+)"', page).group(1))


def test_poll_with_nothing_changed_is_an_empty_204_from_one_query(api, client):
    api.start()
    version = version_of(client.get("/dashboard/runs/run-1/").content.decode())
    with CaptureQueriesContext(connection) as queries:
        response = poll(client, "run-1", version)
    assert response.status_code == 204 and response.content == b""
    assert len(queries) == 1


def test_poll_after_a_change_carries_the_summary_and_only_the_changed_rows(api, client):
    api.start(plan(tiers=(("T1", 3), ("T2", 3))))
    version = version_of(client.get("/dashboard/runs/run-1/").content.decode())
    api.move("run-1", "P5", "EXECUTING")
    response = poll(client, "run-1", version)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="run-summary"' in page and f"v={version + 1}" in page
    phase_rows = re.findall(r'<tbody id="phase-(\d+)"[^>]*hx-swap-oob="true"', page)
    tier_rows = re.findall(r'<tbody id="tier-(\d+)"[^>]*hx-swap-oob="true"', page)
    assert len(phase_rows) == 1 and len(tier_rows) == 1
    assert "Phase 5" in page and "Phase 4" not in page
    assert "<title>run-1 · PHASE_EXECUTION · 0.0% · Autopack</title>" in page


def test_dashboard_panel_poll_has_no_rows(api, client):
    api.start()
    api.move("run-1", "P1", "EXECUTING")
    page = poll(client, "run-1", 1, rows=0).content.decode()
    assert "hx-swap-oob" not in page and 'id="run-summary"' in page


def test_poll_stops_once_the_run_is_finished(api, client):
    api.start(plan(tiers=(("T1", 1),)))
    api.move("run-1", "P1", "COMPLETE")
    response = poll(client, "run-1", 1)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()
    assert "hx-trigger" not in client.get("/dashboard/runs/run-1/").content.decode()


def test_poll_of_a_running_run_keeps_its_trigger(api, client):
    api.start()
    api.move("run-1", "P1", "EXECUTING")
    page = poll(client, "run-1", 1).content.decode()
    assert 'hx-trigger="every 5s"' in page


def query_counts(api, client, run_id, phases):
    api.start(plan(run_id=run_id, tiers=(("T1", phases // 2), ("T2", phases // 2)), max_phases=25))
    for n in range(1, phases + 1):
        api.move(run_id, f"P{n}", "EXECUTING")
        api.post(f"/runs/{run_id}/phases/P{n}/record_issue", {"issue_key": "k", "severity": "minor"})
    counts = []
    for request in (
        lambda: client.get(f"/dashboard/runs/{run_id}/"),
        lambda: poll(client, run_id, 1),
        lambda: client.get("/dashboard/", {"run": run_id}),
    ):
        # Quota reads and overrides are cached for a few seconds; measure them uncached every time.
        forget_cached_states()
        forget_cached_overrides()
        with CaptureQueriesContext(connection) as queries:
            assert request().status_code == 200
        counts.append(len(queries))
    return counts


def test_poll_and_page_query_counts_do_not_grow_with_the_run(api, client):
    small = query_counts(api, client, "small", 2)
    big = query_counts(api, client, "big", 24)
    assert small == big
    page, fragment, dashboard = big
    # The fragment: the run's version, the run, its changed rows with their issues, and progress from
    # aggregates. The page adds its budget (the calls in flight, the run's spend), its timeline (events,
    # notes, calls) and the phases that look stuck (one query, with each one's last call).
    assert page <= 12 and fragment <= 7 and dashboard <= 41


def test_dashboard_pages_may_be_framed_by_the_editors(client):
    for url in ("/dashboard/", "/docs"):
        response = client.get(url)
        assert "X-Frame-Options" not in response
        ancestors = re.search(r"frame-ancestors ([^;]+)", response["Content-Security-Policy"]).group(1)
        assert {"'self'", "vscode-webview:", "vscode-file:", "http://127.0.0.1:*"} <= set(ancestors.split())


def test_admin_refuses_to_be_framed(client):
    response = client.get("/admin/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_frame_ancestors_are_configurable(client, settings):
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            **settings.CONTENT_SECURITY_POLICY["DIRECTIVES"],
            "frame-ancestors": ["https://ide.example"],
        }
    }
    assert "frame-ancestors https://ide.example" in client.get("/dashboard/")["Content-Security-Policy"]


def test_an_unknown_period_shows_the_week_with_a_notice(api, client):
    api.start(plan())
    response = client.get("/dashboard/?period=bogus")
    assert response.status_code == 200
    assert "Unknown period “bogus”: showing the last week." in response.content.decode()
