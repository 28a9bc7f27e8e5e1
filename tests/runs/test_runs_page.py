"""The runs page (`/dashboard/runs/`), its polled list, and the dashboard's choice of run."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from autopack_site import clock
from runs.models import Run
from runs.payloads import PhaseSpec, RunSpec, TierSpec
from runs.services import start_run, update_phase_status, update_run_status
from tests.conftest import plan
from usage.models import RunUsageBucket

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def start_runs(count: int, *, prefix: str = "run", since: dt.datetime = T0) -> list[str]:
    """Start `count` runs of two phases through the service, one a minute from `since`."""
    run_ids = []
    for n in range(count):
        run_id = f"{prefix}-{n:03d}"
        with clock.frozen_at(since + dt.timedelta(minutes=n)):
            start_run(
                run=RunSpec(run_id=run_id),
                tiers=[TierSpec(tier_id="T1", tier_index=0, name="Tier 1")],
                phases=[
                    PhaseSpec(phase_id="P1", phase_index=0, tier_id="T1", name="Phase 1"),
                    PhaseSpec(phase_id="P2", phase_index=1, tier_id="T1", name="Phase 2"),
                ],
            )
        run_ids.append(run_id)
    return run_ids


def move(run_id: str, phase_id: str, state: str, at: dt.datetime):
    with clock.frozen_at(at):
        update_phase_status(run_id=run_id, phase_id=phase_id, state=state)


def listed(page: str) -> list[str]:
    return re.findall(r'<tr class="run-row" data-run-id="([^"]+)"', page)


def list_version(page: str) -> str:
    return re.search(r'id="runs-list" data-version="([^"]+)"', page).group(1)


def row_of(page: str, run_id: str) -> str:
    start = page.index(f'data-run-id="{run_id}"')
    return page[start : page.index("</tr>", start)]


def picker_of(page: str) -> list[str]:
    picker = page[page.index('<select id="run-select"') : page.index("</select>")]
    return re.findall(r'<option value="([^"]+)"', picker)


def test_header_links_to_the_runs_page(client):
    page = client.get("/dashboard/").content.decode()
    assert '<a href="/dashboard/runs/">Runs</a>' in page


def test_runs_page_without_runs_says_how_to_start_one(client):
    page = client.get("/dashboard/runs/").content.decode()
    assert "No runs yet" in page and "POST /runs/start" in page


def test_runs_page_shows_state_progress_tokens_cost_start_and_duration(api, client):
    with clock.frozen_at(T0):
        api.start(plan(run_id="done-run", tiers=(("T1", 4),)))
    move("done-run", "P1", "EXECUTING", T0 + dt.timedelta(minutes=1))
    api.move("done-run", "P1", "EXECUTING", tokens_used=12_345)
    move("done-run", "P1", "COMPLETE", T0 + dt.timedelta(minutes=2))
    move("done-run", "P2", "SKIPPED", T0 + dt.timedelta(minutes=3))
    move("done-run", "P3", "FAILED", T0 + dt.timedelta(minutes=5))
    move("done-run", "P4", "COMPLETE", T0 + dt.timedelta(minutes=11))
    RunUsageBucket.objects.bulk_create(
        [
            RunUsageBucket(start=T0, run_id="done-run", phase_id="P1", cost_usd=Decimal("0.125")),
            RunUsageBucket(start=T0 + dt.timedelta(hours=1), run_id="done-run", phase_id="P1", cost_usd=Decimal("1")),
            RunUsageBucket(start=T0, run_id="done-run", phase_id="", cost_usd=Decimal("0.0005")),
            RunUsageBucket(start=T0, run_id="someone-else", phase_id="P1", cost_usd=Decimal("7")),
        ]
    )
    page = client.get("/dashboard/runs/").content.decode()
    row = row_of(page, "done-run")
    state = Run.objects.get(run_id="done-run").state
    assert state.startswith("DONE_FAILED") and f'<span class="badge state-{state.lower()}">{state}</span>' in row
    assert 'aria-valuenow="75.0"' in row and "75.0%" in row
    assert "12.35K" in row
    assert "$1.1255" in row
    assert '<time datetime="2026-03-02T09:01:00+00:00">2026-03-02 09:01</time>' in row
    assert "10m 00s" in row and "running" not in row and "data-elapsed-from" not in row
    assert 'href="/dashboard/runs/done-run/"' in row and 'href="/dashboard/?run=done-run"' in row


def test_a_running_run_shows_its_duration_so_far_ticking_and_a_new_one_not_started(api, client):
    start_runs(2)
    move("run-000", "P1", "EXECUTING", clock.now() - dt.timedelta(minutes=5))
    page = client.get("/dashboard/runs/").content.decode()
    running = row_of(page, "run-000")
    assert "data-elapsed-from=" in running and "5m 0" in running and "running" in running
    assert "$" not in running
    fresh = row_of(page, "run-001")
    assert "not started" in fresh and "0.0%" in fresh


def test_runs_are_listed_by_most_recent_activity(client):
    start_runs(3)
    move("run-000", "P1", "EXECUTING", T0 + dt.timedelta(hours=1))
    assert listed(client.get("/dashboard/runs/").content.decode()) == ["run-000", "run-002", "run-001"]


def test_runs_page_filters_by_state_and_by_state_group(client):
    start_runs(4)
    move("run-000", "P1", "EXECUTING", T0 + dt.timedelta(hours=1))
    move("run-001", "P1", "COMPLETE", T0 + dt.timedelta(hours=1))
    move("run-001", "P2", "COMPLETE", T0 + dt.timedelta(hours=2))
    with clock.frozen_at(T0 + dt.timedelta(hours=3)):
        update_run_status(run_id="run-002", state="DONE_FAILED_ENVIRONMENT", failure_reason="disk full")

    def runs_in(state):
        return sorted(listed(client.get("/dashboard/runs/", {"state": state}).content.decode()))

    assert runs_in("PHASE_EXECUTION") == ["run-000"]
    assert runs_in("DONE_SUCCESS") == ["run-001"]
    assert runs_in("RUN_CREATED") == ["run-003"]
    assert runs_in("finished") == ["run-001", "run-002"]
    assert runs_in("active") == ["run-000", "run-003"]
    page = client.get("/dashboard/runs/", {"state": "finished"}).content.decode()
    assert '<option value="finished" selected>' in page and "1–2 of 2 runs matching" in page


def test_an_unknown_state_filter_lists_every_run(client):
    start_runs(2)
    page = client.get("/dashboard/runs/", {"state": "NOT_A_STATE"}).content.decode()
    assert len(listed(page)) == 2 and "Clear" not in page


def test_runs_page_searches_run_ids_by_substring_whatever_the_case(client):
    start_runs(3, prefix="alpha")
    start_runs(2, prefix="Beta-Nightly", since=T0 + dt.timedelta(hours=1))
    page = client.get("/dashboard/runs/", {"q": " nightly "}).content.decode()
    assert sorted(listed(page)) == ["Beta-Nightly-000", "Beta-Nightly-001"]
    assert 'value="nightly"' in page
    assert listed(client.get("/dashboard/runs/", {"q": "pha-001"}).content.decode()) == ["alpha-001"]
    assert "No runs match." in client.get("/dashboard/runs/", {"q": "gamma"}).content.decode()


def test_search_and_filter_combine(client):
    start_runs(3, prefix="alpha")
    move("alpha-001", "P1", "EXECUTING", T0 + dt.timedelta(hours=1))
    start_runs(1, prefix="beta", since=T0 + dt.timedelta(hours=2))
    move("beta-000", "P1", "EXECUTING", T0 + dt.timedelta(hours=3))
    page = client.get("/dashboard/runs/", {"q": "alpha", "state": "PHASE_EXECUTION"}).content.decode()
    assert listed(page) == ["alpha-001"]


def test_a_search_is_escaped_and_an_unusable_one_ignored(client):
    start_runs(1)
    page = client.get("/dashboard/runs/", {"q": "<script>x</script>"}).content.decode()
    assert "<script>x</script>" not in page and 'value="&lt;script&gt;x&lt;/script&gt;"' in page
    assert "q=%3Cscript%3Ex%3C%2Fscript%3E" in page
    assert len(listed(client.get("/dashboard/runs/", {"q": "a\x00b"}).content.decode())) == 1
    assert len(listed(client.get("/dashboard/runs/", {"q": "r" * 201}).content.decode())) == 1


def test_a_few_hundred_runs_are_paginated_newest_activity_first_with_the_filter_kept(client):
    start_runs(260)
    first = client.get("/dashboard/runs/").content.decode()
    assert listed(first) == [f"run-{n:03d}" for n in range(259, 209, -1)]
    assert "1–50 of 260 runs" in first and "Page 1 of 6" in first
    assert 'href="/dashboard/runs/?page=2" rel="next"' in first and 'rel="prev"' not in first

    third = client.get("/dashboard/runs/", {"page": 3}).content.decode()
    assert listed(third) == [f"run-{n:03d}" for n in range(159, 109, -1)]
    assert 'href="/dashboard/runs/?page=2" rel="prev"' in third and "page=3&amp;v=" in third

    last = client.get("/dashboard/runs/", {"page": 6}).content.decode()
    assert listed(last) == [f"run-{n:03d}" for n in range(9, -1, -1)]
    assert "251–260 of 260 runs" in last and 'rel="next"' not in last

    filtered = client.get("/dashboard/runs/", {"q": "run-1", "state": "RUN_CREATED", "page": 2}).content.decode()
    assert listed(filtered) == [f"run-{n:03d}" for n in range(149, 99, -1)]
    assert 'href="/dashboard/runs/?state=RUN_CREATED&amp;q=run-1&amp;page=1" rel="prev"' in filtered
    assert "/dashboard/runs/list?state=RUN_CREATED&amp;q=run-1&amp;page=2&amp;v=" in filtered


def test_a_page_beyond_the_last_or_not_a_number_shows_the_nearest_page(client):
    start_runs(60)
    assert "Page 2 of 2" in client.get("/dashboard/runs/", {"page": 99}).content.decode()
    for page in ("0", "-1", "two", "²", "9" * 30):
        assert "Page 1 of 2" in client.get("/dashboard/runs/", {"page": page}).content.decode()


def poll_list(client, page: str, **params):
    url = re.search(r'hx-get="(/dashboard/runs/list\?[^"]+)"', page).group(1).replace("&amp;", "&")
    return client.get(url, params) if params else client.get(url)


def test_list_poll_with_nothing_changed_is_an_empty_204_from_one_query(client):
    start_runs(3)
    page = client.get("/dashboard/runs/", {"state": "active", "page": 1}).content.decode()
    with CaptureQueriesContext(connection) as queries:
        response = poll_list(client, page)
    assert response.status_code == 204 and response.content == b""
    assert len(queries) == 1


def test_list_poll_after_a_change_carries_the_list_with_its_new_version(client):
    start_runs(3)
    page = client.get("/dashboard/runs/").content.decode()
    move("run-000", "P1", "EXECUTING", clock.now())
    response = poll_list(client, page)
    fragment = response.content.decode()
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<div id="runs-list"') and "<html" not in fragment
    assert listed(fragment)[0] == "run-000" and "PHASE_EXECUTION" in row_of(fragment, "run-000")
    assert list_version(fragment) != list_version(page)
    assert 'hx-trigger="every 5s"' in fragment
    assert poll_list(client, fragment).status_code == 204


def test_list_poll_sees_a_new_run_a_run_status_change_and_a_deleted_run(client):
    start_runs(3)
    page = client.get("/dashboard/runs/").content.decode()
    # Written with a clock behind the latest activity: the version still moves.
    with clock.frozen_at(T0):
        update_run_status(run_id="run-001", state="PHASE_QUEUEING")
    page = poll_list(client, page).content.decode()
    assert "PHASE_QUEUEING" in row_of(page, "run-001")
    start_runs(1, prefix="late", since=T0)
    page = poll_list(client, page).content.decode()
    assert "late-000" in listed(page)
    Run.objects.filter(run_id="run-002").delete()
    page = poll_list(client, page).content.decode()
    assert "run-002" not in listed(page) and len(listed(page)) == 3


def test_list_poll_answers_for_its_own_filter_only(client):
    start_runs(3)
    page = client.get("/dashboard/runs/", {"state": "PHASE_EXECUTION"}).content.decode()
    assert listed(page) == []
    start_runs(1, prefix="other", since=T0 + dt.timedelta(hours=1))
    assert poll_list(client, page).status_code == 204
    move("run-001", "P1", "EXECUTING", T0 + dt.timedelta(hours=2))
    assert listed(poll_list(client, page).content.decode()) == ["run-001"]


def test_list_poll_with_a_made_up_version_gets_the_list(client):
    start_runs(1)
    response = client.get("/dashboard/runs/list", {"v": "1.1.1"})
    assert response.status_code == 200 and listed(response.content.decode()) == ["run-000"]
    assert client.get("/dashboard/runs/list").status_code == 200


def runs_page_query_counts(client, count: int) -> tuple[int, int, int]:
    run_ids = start_runs(count, prefix=f"of-{count}")
    for run_id in run_ids[:: max(1, count // 10)]:
        move(run_id, "P1", "COMPLETE", clock.now())
        RunUsageBucket.objects.create(start=T0, run_id=run_id, phase_id="P1", cost_usd=Decimal("0.5"))
    counts = []
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/dashboard/runs/", {"state": "active", "page": 1})
    assert page.status_code == 200 and listed(page.content.decode())
    counts.append(len(queries))
    with CaptureQueriesContext(connection) as queries:
        changed = poll_list(client, page.content.decode(), v="stale")
    assert changed.status_code == 200
    counts.append(len(queries))
    with CaptureQueriesContext(connection) as queries:
        assert poll_list(client, page.content.decode()).status_code == 204
    counts.append(len(queries))
    Run.objects.all().delete()
    return tuple(counts)


def test_runs_page_and_list_query_counts_do_not_grow_with_the_number_of_runs(client):
    few = runs_page_query_counts(client, 3)
    many = runs_page_query_counts(client, 300)
    assert few == many == (4, 4, 1)


def test_runs_page_may_be_framed_by_the_editors(client):
    for url in ("/dashboard/runs/", "/dashboard/runs/list"):
        response = client.get(url)
        assert "X-Frame-Options" not in response
        assert "vscode-webview:" in re.search(r"frame-ancestors ([^;]+)", response["Content-Security-Policy"]).group(1)


def test_runs_page_and_list_take_only_get(client):
    assert client.post("/dashboard/runs/").status_code == 405
    assert client.post("/dashboard/runs/list").status_code == 405


# The dashboard's choice of run.


def test_dashboard_opens_on_the_run_with_the_most_recent_activity(client):
    start_runs(1, prefix="executing")
    move("executing-000", "P1", "EXECUTING", T0 + dt.timedelta(minutes=5))
    # Created later but never started: it used to hide the executing run.
    start_runs(1, prefix="idle", since=T0 + dt.timedelta(minutes=10))
    move("executing-000", "P1", "COMPLETE", T0 + dt.timedelta(minutes=20))
    page = client.get("/dashboard/").content.decode()
    assert '<option value="executing-000" selected>' in page
    assert picker_of(page) == ["executing-000", "idle-000"]
    assert "<title>executing-000 · PHASE_EXECUTION · 50.0%" in page


def test_dashboard_opens_on_a_finished_run_when_it_was_the_last_to_change(client):
    start_runs(2)
    move("run-001", "P1", "COMPLETE", T0 + dt.timedelta(hours=1))
    move("run-001", "P2", "COMPLETE", T0 + dt.timedelta(hours=2))
    page = client.get("/dashboard/").content.decode()
    assert '<option value="run-001" selected>' in page and "DONE_SUCCESS" in page


def test_dashboard_picker_says_when_it_does_not_list_every_run(client):
    start_runs(200)
    page = client.get("/dashboard/").content.decode()
    assert len(picker_of(page)) == 200 and "find any run on the runs page" not in page
    assert '<a class="button" href="/dashboard/runs/">All runs</a>' in page

    start_runs(1, prefix="newest", since=T0 + dt.timedelta(days=1))
    page = client.get("/dashboard/").content.decode()
    assert len(picker_of(page)) == 200 and picker_of(page)[0] == "newest-000"
    assert "run-000" not in picker_of(page)
    assert "The list holds the 200 runs with the most recent activity" in page
    assert '<a href="/dashboard/runs/">find any run on the runs page</a>' in page


def test_dashboard_lists_a_selected_run_the_picker_would_leave_out(client):
    start_runs(201)
    page = client.get("/dashboard/", {"run": "run-000"}).content.decode()
    assert picker_of(page)[0] == "run-000" and '<option value="run-000" selected>' in page
    assert len(picker_of(page)) == 201
