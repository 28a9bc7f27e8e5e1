"""The mapping panel: a cell shows its model as text, its choices load when a person starts a change,
the provider strip names its window, and global scope never shows a run's overrides."""

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing.quotas import forget_cached_states
from routing.router import forget_cached_overrides
from tests.conftest import plan
from tests.usage.conftest import event
from usage.recording import record_usage_events

pytestmark = pytest.mark.django_db

CELL = {"scope": "global", "role": "builder", "category": "docs", "complexity": "low"}


def cell_html(page: str, key: str) -> str:
    start = page.index(f'id="cell-{key}"')
    return page[start : page.index("</div></td>", start)]


def test_dashboard_with_the_demo_is_under_60_kb_and_lists_no_catalog(client):
    call_command("demo")
    forget_cached_states()
    page = client.get("/dashboard/").content.decode()
    assert 'id="mapping-panel"' in page and page.count('class="cell"') == 36
    assert len(page.encode()) < 60_000
    # The run picker is the page's only dropdown; the catalog comes with a cell's change only.
    assert page.count("<select") == 1 and "<optgroup" not in page


def test_a_cell_shows_its_model_as_text_with_a_change_button(client, routing):
    page = client.get("/dashboard/models/panel").content.decode()
    html = cell_html(page, "builder-docs-low")
    assert '<span class="cell-model">gpt-4o-mini</span>' in html and ">yaml</span>" in html
    assert (
        'hx-get="/dashboard/models/cell?scope=global&amp;role=builder&amp;category=docs&amp;complexity=low&amp;edit=1"'
        in html
    )
    assert ">Change</button>" in html and "<select" not in page


def test_change_fetches_one_cell_with_the_catalog_grouped_by_provider(client, routing):
    page = client.get("/dashboard/models/cell", {**CELL, "edit": "1"}).content.decode()
    assert page.count("<select") == 1 and 'id="select-builder-docs-low" name="model" autofocus' in page
    assert '<optgroup label="anthropic">' in page and '<optgroup label="google">' in page
    assert re.findall(r"<option selected>([^<]+)</option>", page) == ["gpt-4o-mini"]
    assert 'hx-post="/dashboard/forms/override"' in page and 'name="run_id"' not in page
    assert ">Cancel</button>" in page


def test_cancel_gives_the_cell_back_without_its_form(client, routing):
    page = client.get("/dashboard/models/cell", CELL).content.decode()
    assert 'id="cell-builder-docs-low"' in page and "<select" not in page and ">Change</button>" in page


def test_a_cell_in_run_scope_edits_that_runs_overrides(client, api, routing):
    api.start(plan())
    panel = client.get("/dashboard/models/panel", {"scope": "run", "run": "run-1"}).content.decode()
    assert "Changes apply to run run-1 only." in panel and "scope=run&amp;run=run-1&amp;role=builder" in panel
    page = client.get("/dashboard/models/cell", {**CELL, "scope": "run", "run": "run-1", "edit": "1"}).content.decode()
    assert 'name="scope" value="run"' in page and 'name="run_id" value="run-1"' in page


def test_an_unknown_cell_is_404(client, routing):
    assert client.get("/dashboard/models/cell", {**CELL, "category": "nope"}).status_code == 404


def test_a_cell_fragment_is_a_few_queries_whatever_the_overrides(client, api, routing):
    counts = []
    for model in (None, "o3"):
        if model:
            api.post("/dashboard/models/override", {**CELL, "model": model})
        forget_cached_states()
        forget_cached_overrides()
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/dashboard/models/cell", {**CELL, "edit": "1"}).status_code == 200
        counts.append(len(queries))
    # Uncached quota reads are eight of them and the overrides one; in use both are cached for a few seconds.
    # Then the changes list and the status poll's version.
    assert counts[0] == counts[1] <= 13


def test_a_quota_redirect_is_marked_beside_the_model(client, routing):
    record_usage_events([event(prompt_tokens=900)], atomic_batch=True)
    forget_cached_states()
    html = cell_html(client.get("/dashboard/models/panel").content.decode(), "builder-general-medium")
    assert '<span class="cell-model">gpt-4o</span>' in html
    assert 'class="badge redirected"' in html and "→ gemini-2.5-flash" in html


def badge_html(page: str, key: str) -> str:
    start = page.index(f'id="badge-{key}"')
    return page[start : page.index("</div>", start)]


def strip(page: str) -> list[str]:
    items = page[page.index('id="provider-strip"') : page.index("</ul>", page.index('id="provider-strip"'))]
    return [re.sub(r"<[^>]+>", "", item) for item in re.findall(r"<li[^>]*>(.*?)</li>", items)]


def test_the_strip_says_each_providers_share_of_its_cap_in_the_window_asked_for(client, routing):
    record_usage_events([event(prompt_tokens=900)], atomic_batch=True)
    forget_cached_states()
    day = strip(client.get("/dashboard/models/panel", {"period": "day"}).content.decode())
    assert {"anthropic: no daily cap", "openai: 95% of its daily cap · over its daily soft limit (80%)"} <= set(day)
    week = strip(client.get("/dashboard/models/panel", {"period": "week"}).content.decode())
    assert {"anthropic: 0% of its weekly cap", "openai: no weekly cap · over its daily soft limit (80%)"} <= set(week)


def test_the_dashboards_strip_uses_the_usage_panels_period(client, api, routing):
    api.start(plan())
    page = client.get("/dashboard/", {"period": "month"}).content.decode()
    assert "anthropic: no monthly cap" in strip(page)
    assert 'hx-vals=\'{"period": "month"}\'' in page and "data-follows-usage-period" in page


def test_the_poll_names_the_window_it_is_given(client, routing):
    page = client.get("/dashboard/models/status", {"period": "week"}).content.decode()
    assert "anthropic: 0% of its weekly cap" in strip(page)
    # The poller itself (with its new version), the strip and the 18 cells' badges.
    assert page.count('hx-swap-oob="true"') == 2 + 18 and "<select" not in page and "<form" not in page


def test_an_unchanged_status_poll_is_a_204_and_a_change_brings_it_back(client, api, routing):
    page = client.get("/dashboard/models/status", {"period": "week"}).content.decode()
    version = re.search(r"v=(week:[^\"&]+)", page).group(1)
    assert client.get("/dashboard/models/status", {"period": "week", "v": version}).status_code == 204
    # Another window asked for: the strip must be shown for it.
    assert client.get("/dashboard/models/status", {"period": "day", "v": version}).status_code == 200
    api.post("/dashboard/models/override", {**CELL, "model": "o3"})
    changed = client.get("/dashboard/models/status", {"period": "week", "v": version})
    assert changed.status_code == 200 and "global override" in changed.content.decode()


def test_global_scope_never_shows_a_run_override(client, api, routing):
    api.start(plan())
    api.post("/dashboard/models/override", {**CELL, "scope": "run", "run_id": "run-1", "model": "o3"})
    for url, query in (
        ("/dashboard/models/panel", {"scope": "global", "run": "run-1"}),
        ("/dashboard/", {"run": "run-1"}),
        ("/dashboard/models/status", {"scope": "global", "run": "run-1"}),
    ):
        page = client.get(url, query).content.decode()
        html = badge_html(page, "builder-docs-low")
        assert '<span class="cell-model">gpt-4o-mini</span>' in html and ">yaml</span>" in html, url
        assert "run override" not in page and "Reset to" not in page, url
    run_scope = client.get("/dashboard/models/panel", {"scope": "run", "run": "run-1"}).content.decode()
    html = cell_html(run_scope, "builder-docs-low")
    assert '<span class="cell-model">o3</span>' in html and ">run override</span>" in html
    assert "Reset to global" in html


def test_the_panel_is_kept_per_version_and_stays_small_with_every_provider_over_its_caps(client):
    from routing.services import set_override

    call_command("demo")
    huge = [
        event(provider=p, model=m, prompt_tokens=900_000_000, completion_tokens=1, request_id=f"huge-{m}")
        for p, m in (("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-flash"))
    ]
    assert record_usage_events(huge, atomic_batch=True).imported == 3
    forget_cached_states()
    page = client.get("/dashboard/models/panel").content
    assert page.count(b"refused") + page.count(b"redirected") >= 20
    # Every cell refused or redirected, each with its reason: still well under what one poll should carry.
    assert len(page) < 30 * 1024
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/dashboard/models/panel").content
    # The version only: the same bytes, not rendered again.
    assert again == page and len(queries) == 1
    set_override(scope="global", role="builder", category="docs", complexity="low", model="o3", via="dashboard")
    changed = client.get("/dashboard/models/panel").content.decode()
    assert '<span class="cell-model">o3</span>' in cell_html(changed, "builder-docs-low")
