"""The dashboard over HTTP: polls, run status, panels, page weight and worker memory, beside /healthz.

Used by bench/run_all.py with two servers, one on 10 million usage events and one on 10 thousand.
Runs are made through the JSON API (POST /runs/start, once per database), one phase of each is
changed, and the poll URLs are read from the pages themselves (the hx-get of every element whose
hx-trigger says "every"), so what is measured is what an open page asks for, with HX-Request set.
"""

import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from itertools import cycle, islice
from urllib.parse import urlencode

from serve import WRK_ONE_AT_A_TIME, rss_mb, wrk

SMALL_RUN, LARGE_RUN = ("bench-12", 12, 3), ("bench-500", 500, 10)
HTMX = {"HX-Request": "true"}
USAGE_PANEL = "/dashboard/usage/panel?period=month"
MAPPING_PANEL = "/dashboard/models/panel"


def run_plan(run_id: str, phases: int, tiers: int) -> dict:
    per_tier = phases // tiers
    return {
        "run": {"run_id": run_id, "safety_profile": "normal", "run_scope": "multi_tier", "max_phases": phases},
        "tiers": [{"tier_id": f"T{t}", "tier_index": t, "name": f"Tier {t}"} for t in range(tiers)],
        "phases": [
            {
                "phase_id": f"F{i}",
                "phase_index": i,
                "tier_id": f"T{i // per_tier}",
                "name": f"Phase {i}",
                "task_category": "general",
                "complexity": "medium",
            }
            for i in range(phases)
        ],
    }


def prepare_run(server, run_id: str, phases: int, tiers: int) -> None:
    """Start the run if this database has not got it, then change one phase so the latest version carries one row."""
    if server.get(f"/runs/{run_id}")[0] == 404:
        status, _, body = server.request("POST", "/runs/start", run_plan(run_id, phases, tiers))
        assert status == 201, body[:500]
    phase = f"F{phases // 2}"
    status, _, body = server.request(
        "POST", f"/runs/{run_id}/phases/{phase}/update_status", {"state": "EXECUTING", "tokens_used": phases}
    )
    assert status == 200, body[:500]


class _PollingElements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "every" in (attrs.get("hx-trigger") or "") and attrs.get("hx-get"):
            url, values = attrs["hx-get"], json.loads(attrs.get("hx-vals") or "{}")
            self.urls.append(url + ("&" if "?" in url else "?") + urlencode(values) if values else url)


def poll_urls(server, page: str) -> list[str]:
    parser = _PollingElements()
    parser.feed(server.get(page)[2].decode())
    return parser.urls


def one_version_back(url: str) -> str:
    """The same poll from a page one change behind: the answer carries exactly that change."""
    return re.sub(r"([?&]v=)(\d+)", lambda m: f"{m[1]}{int(m[2]) - 1}", url)


def unchanged_answer(server, url: str) -> tuple[dict, int]:
    """Headers of a repeat poll (with the validators the first answer gave, if any), and its status."""
    _, headers, _ = server.get(url, HTMX)
    conditional = {**HTMX}
    if "etag" in headers:
        conditional["If-None-Match"] = headers["etag"]
    if "last-modified" in headers:
        conditional["If-Modified-Since"] = headers["last-modified"]
    return conditional, server.get(url, conditional)[0]


def first_load_bytes(server) -> tuple[int, int]:
    """/dashboard/ as a browser with an empty cache fetches it, gzip accepted: bytes of the HTML, of its CSS and JS."""
    gzip = {"Accept-Encoding": "gzip"}
    _, _, html = server.get("/dashboard/", gzip)
    _, _, plain = server.get("/dashboard/")
    assets = re.findall(r'<script[^>]+src="(/[^"]+)"|<link[^>]+rel="stylesheet"[^>]+href="(/[^"]+)"', plain.decode())
    return len(html), sum(len(server.get(a or b, gzip)[2]) for a, b in assets)


class Dashboard:
    """Every HTTP figure for one round, measured on `large` (10M events) and, for the usage panel, `small`."""

    def __init__(self, large, small):
        self.large, self.small = large, small
        for server in (small, large):
            for run in (SMALL_RUN, LARGE_RUN):  # the 500-phase run last: the dashboard opens on it
                prepare_run(server, *run)
        page_polls = {run[0]: poll_urls(large, f"/dashboard/runs/{run[0]}/") for run in (SMALL_RUN, LARGE_RUN)}
        dashboard_polls = {run[0]: poll_urls(large, f"/dashboard/?run={run[0]}") for run in (SMALL_RUN, LARGE_RUN)}
        progress = {
            (where, run_id): next(u for u in urls if "/progress" in u)
            for where, polls in (("page", page_polls), ("dashboard", dashboard_polls))
            for run_id, urls in polls.items()
        }
        self.unchanged_poll = progress["page", LARGE_RUN[0]]
        self.changed_polls = {key: one_version_back(url) for key, url in progress.items()}
        self.panel_polls = self.current_panel_polls()

    def current_panel_polls(self) -> dict:
        """Each panel's poll as an open dashboard sends it now: with the version its last answer gave.

        Versions that hold the minute (windows roll) move once a minute, so each round asks afresh.
        """
        urls = poll_urls(self.large, f"/dashboard/?run={LARGE_RUN[0]}")
        polls = {}
        for name, marker in (("usage", "/usage/"), ("mapping", "/models/"), ("notes", "/notes/")):
            url = next(u for u in urls if marker in u)
            headers, status = unchanged_answer(self.large, url)
            polls[name] = (url, headers, status)
        return polls

    def paired(self, figures: dict, name: str, url: str, headers: dict | None = None) -> None:
        """Load `url`, then /healthz right after: each throughput has its own reference, measured under
        the same conditions (a machine's speed drifts by half over a minute when other work runs)."""
        figures[name] = wrk(self.large.url(url), headers=headers)
        figures[f"{name}_healthz"] = wrk(self.large.url("/healthz"))

    def round(self) -> dict:
        large, small = self.large, self.small
        figures = {}
        self.paired(figures, "unchanged_poll", self.unchanged_poll, HTMX)
        self.paired(figures, "status", f"/dashboard/runs/{LARGE_RUN[0]}/status")
        self.paired(figures, "mapping_panel", MAPPING_PANEL, HTMX)
        figures |= {
            "usage_panel_large": wrk(large.url(USAGE_PANEL), WRK_ONE_AT_A_TIME, HTMX),
            "usage_panel_small": wrk(small.url(USAGE_PANEL), WRK_ONE_AT_A_TIME, HTMX),
        }
        for (where, run_id), url in self.changed_polls.items():
            figures[f"changed_{where}_{run_id}"] = wrk(large.url(url), WRK_ONE_AT_A_TIME, HTMX)
        for name in self.panel_polls:
            # A load of wrk's 5 s must not cross into a new minute, where every versioned poll of it is stale.
            if time.time() % 60 > 53:
                time.sleep(60.5 - time.time() % 60)
            url, headers, _ = self.current_panel_polls()[name]
            self.paired(figures, f"{name}_poll", url, headers)
        return figures

    def sizes(self) -> dict:
        html, assets = first_load_bytes(self.large)
        return {
            "mapping_panel_bytes": len(self.large.get(MAPPING_PANEL, HTMX)[2]),
            "unchanged_poll_status": self.large.get(self.unchanged_poll, HTMX)[0],
            "dashboard_html_bytes": html,
            "dashboard_asset_bytes": assets,
            "panel_poll_status": {name: status for name, (_, _, status) in self.panel_polls.items()},
        }

    def worker_growth(self, requests: int = 10_000) -> tuple[float, float]:
        """Summed RSS (MB) of the large server's workers before and after `requests` polls of an open dashboard."""
        urls = [self.unchanged_poll, f"/dashboard/runs/{LARGE_RUN[0]}/status"]
        urls += [url for url, _, _ in self.panel_polls.values()]
        before = sum(rss_mb(pid) for pid in self.large.worker_pids())
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda url: self.large.get(url, HTMX), islice(cycle(urls), requests)))
        after = sum(rss_mb(pid) for pid in self.large.worker_pids())
        return before, after


def median_of(rounds: list[dict], key: str, figure: str) -> float:
    return statistics.median(r[key][figure] for r in rounds)
