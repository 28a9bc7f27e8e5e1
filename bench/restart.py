"""The served app through a database restart: a throwaway cluster stopped mid-load, then started again.

    .venv/bin/python bench/load.py --restart

While the database is away, every request that needs it must answer 503 with Retry-After: JSON for the
API and the polled fragments, a short page that reloads itself for pages, also when the failure comes
from outside the view (the session of a logged-in person, the template context); /healthz answers 503.
Once it is back, everything must answer again with the same gunicorn workers (none killed by the
worker timeout meanwhile), and the ledger must hold: an event is counted everywhere or nowhere.
"""

import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from _db import ROOT, database_url, prepare_database
from cluster import Cluster
from load import CLIENTS, SECONDS, Answer, Connection, Ledger, check, figures, notes_env, run_load
from serve import Server

DATABASE = "autopack_load"
DOWN_FOR = 5.0
# How often /healthz and the API are asked while the database is away, and once it is back.
POLL_SECONDS = 0.1
RECOVERY_POLL_SECONDS = 0.02
RECOVERY_LIMIT = 60.0
STAFF_USER, STAFF_EMAIL, STAFF_PASSWORD = "load-staff", "load-staff@example.com", "load-staff-password-1"


@dataclass
class Probe:
    """One request sent while the database is away (or once it is back) and what its answer should be."""

    name: str
    path: str
    method: str = "GET"
    headers: dict = field(default_factory=dict)
    logged_in: bool = False
    # "json": our JSON error; "page": the short page that reloads itself.
    outage_answer: str = "json"


def probes(run_id: str) -> list[Probe]:
    page = {"Accept": "text/html"}
    poll = {"Accept": "text/html", "HX-Request": "true"}
    return [
        Probe("/healthz", "/healthz"),
        Probe("API read", f"/runs/{run_id}"),
        Probe("API write (usage event)", "/api/usage", "POST"),
        Probe("dashboard page", "/dashboard/", headers=page, outage_answer="page"),
        Probe("run page", f"/dashboard/runs/{run_id}/", headers=page, outage_answer="page"),
        Probe("htmx fragment (usage panel)", "/dashboard/usage/panel", headers=poll),
        Probe("htmx fragment (run progress)", f"/dashboard/runs/{run_id}/progress", headers=poll),
        # With a login, the session and its user are read before the view runs, and again by the templates'
        # context processors; the API docs' view itself needs no database, only its template's context does.
        Probe("dashboard, logged in (session)", "/dashboard/", headers=page, logged_in=True, outage_answer="page"),
        Probe("API docs, logged in (template context)", "/docs", headers=page, logged_in=True, outage_answer="page"),
        Probe("login page, logged in (session)", "/login/", headers=page, logged_in=True, outage_answer="page"),
        Probe("admin, logged in (session)", "/admin/", headers=page, logged_in=True, outage_answer="page"),
    ]


def outage_problem(probe: Probe, answer: Answer) -> str:
    """What is wrong with a probe's answer while the database is away; "" when nothing."""
    if answer.status != 503:
        return f"answered {answer.status or 'nothing'} ({answer.error or answer.body[:120]!r}), not 503"
    if "retry-after" not in answer.headers:
        return "503 without Retry-After"
    kind = answer.headers.get("content-type", "")
    if probe.outage_answer == "json":
        body = answer.json()
        if not kind.startswith("application/json") or not isinstance(body, dict) or "error" not in body:
            return f"503 that is not our JSON error: {kind} {answer.body[:120]!r}"
        return ""
    text = answer.body.decode(errors="replace")
    if not kind.startswith("text/html") or 'http-equiv="refresh"' not in text or "Traceback" in text:
        return f"503 that is not the page that reloads itself: {kind} {answer.body[:120]!r}"
    return ""


def staff_session(port: int, url: str) -> str:
    """A staff user made in the database at `url`, logged in through the login page: its session cookie."""
    env = {"DATABASE_URL": url, "DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD}
    made = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "createsuperuser",
            "--no-input",
            "--username",
            STAFF_USER,
            "--email",
            STAFF_EMAIL,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise RuntimeError(f"createsuperuser failed: {made.stderr.strip()}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/login/")
        response = conn.getresponse()
        page = response.read().decode()
        csrf = _cookie(response, "csrftoken")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": STAFF_USER, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": token}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf}"}
        conn.request("POST", "/login/", body=urllib.parse.urlencode(form), headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 302:
            raise RuntimeError(f"logging in answered {response.status}")
        return f"sessionid={_cookie(response, 'sessionid')}"
    finally:
        conn.close()


def _cookie(response, name: str) -> str:
    for header in response.headers.get_all("Set-Cookie") or []:
        found = re.match(rf"{name}=([^;]*)", header)
        if found:
            return found.group(1)
    raise RuntimeError(f"no {name} cookie was set")


class Outage:
    """Stops the cluster `after` seconds into the load, probes the app, starts the cluster `down_for` seconds
    later and times the recovery. Its `run` is the load's `during`."""

    def __init__(self, server: Server, cluster: Cluster, session: str, *, after: float, down_for: float):
        self.server, self.cluster, self.session = server, cluster, session
        self.after, self.down_for = after, down_for
        self.workers_before = server.worker_pids()
        self.outage_probes: dict[str, str] = {}
        self.after_probes: dict[str, str] = {}
        self.healthz_while_down: Counter = Counter()
        self.stopping = self.stopped = self.starting = self.started = 0.0
        self.healthz_back = self.api_back = None

    def run(self, ledger: Ledger) -> None:
        http = Connection(self.server.port)
        time.sleep(max(0.0, ledger.started + self.after - time.monotonic()))
        self.stopping = time.monotonic()
        self.cluster.stop()
        self.stopped = time.monotonic()
        for probe in probes(ledger.run_id):
            answer = self.send(http, probe, ledger)
            self.outage_probes[probe.name] = outage_problem(probe, answer)
        while time.monotonic() < self.stopped + self.down_for:
            answer = http.send("GET", "/healthz")
            self.healthz_while_down[answer.status or "no answer"] += 1
            time.sleep(POLL_SECONDS)
        self.starting = time.monotonic()
        self.cluster.start()
        self.started = time.monotonic()
        self.healthz_back, self.api_back = self.recovery(http, ledger.run_id)
        for probe in probes(ledger.run_id):
            answer = self.send(http, probe, ledger)
            self.after_probes[probe.name] = "" if answer.status and answer.status < 400 else f"answered {answer.status}"
        http.close()

    def send(self, http: Connection, probe: Probe, ledger: Ledger) -> Answer:
        headers = {**probe.headers, **({"Cookie": self.session} if probe.logged_in else {})}
        body = None
        if probe.method == "POST":
            body = self.probe_event(ledger)
        answer = http.send(probe.method, probe.path, body, headers)
        if body is not None:
            ledger.event(body["request_id"], answer)
        return answer

    def probe_event(self, ledger: Ledger) -> dict:
        """A usage event of the probes' own, in the ledger like the clients' events."""
        with ledger.lock:
            request_id = f"{ledger.run_id}-probe-{len(ledger.sent)}"
            event = {
                "provider": "openai",
                "model": "gpt-4o",
                "role": "builder",
                "prompt_tokens": 10,
                "completion_tokens": 5,
            }
            event |= {"run_id": ledger.run_id, "request_id": request_id}
            ledger.sent[request_id] = event
            ledger.sent_ids.append(request_id)
        return event

    def recovery(self, http: Connection, run_id: str) -> tuple[float | None, float | None]:
        """Seconds from the cluster taking connections again to the first 200 of /healthz and of the API."""
        healthz = api = None
        while (healthz is None or api is None) and time.monotonic() < self.started + RECOVERY_LIMIT:
            if healthz is None and http.send("GET", "/healthz").status == 200:
                healthz = time.monotonic() - self.started
            if api is None and http.send("GET", f"/runs/{run_id}").status == 200:
                api = time.monotonic() - self.started
            time.sleep(RECOVERY_POLL_SECONDS)
        return healthz, api

    def figures(self, ledger: Ledger) -> dict:
        """The restart's figures; `problems` lists every rule broken."""
        output = self.server.output()
        workers_after = self.server.worker_pids()
        down = [r for r in ledger.replies if self.stopped <= r.at and r.at + r.seconds <= self.starting]
        statuses = Counter("no answer" if r.status is None else r.status for r in down)
        back = [r.at + r.seconds for r in ledger.replies if r.at >= self.started and r.status and r.status < 300]
        problems = [f"while down, {name}: {p}" for name, p in self.outage_probes.items() if p]
        problems += [f"once back, {name}: {p}" for name, p in self.after_probes.items() if p]
        problems += [f"a client's request while down answered {s} ({n}x)" for s, n in statuses.items() if s != 503]
        problems += [f"/healthz while down answered {s} ({n}x)" for s, n in self.healthz_while_down.items() if s != 503]
        if self.healthz_back is None or self.api_back is None:
            problems.append(f"not back {RECOVERY_LIMIT:g} s after the database was")
        if workers_after != self.workers_before:
            problems.append(f"gunicorn workers changed: {self.workers_before} before, {workers_after} after")
        timeouts = output.count("WORKER TIMEOUT")
        if timeouts:
            problems.append(f"gunicorn logged WORKER TIMEOUT {timeouts} times")
        # gunicorn's own failures, outside Django: the client gets a bare 500 or a reset.
        failures = output.count("Error handling request")
        if failures:
            problems.append(f"gunicorn failed {failures} requests itself (Error handling request)")
        return {
            "down_after_s": round(self.stopping - ledger.started, 1),
            "stop_s": round(self.stopped - self.stopping, 2),
            "down_s": round(self.started - self.stopping, 1),
            "probes_while_down": self.outage_probes,
            "replies_while_down": {str(k): v for k, v in statuses.items()},
            "slowest_while_down_ms": round(max((r.seconds for r in down), default=0) * 1000, 1),
            "healthz_while_down": {str(k): v for k, v in self.healthz_while_down.items()},
            "healthz_back_s": _rounded(self.healthz_back),
            "api_back_s": _rounded(self.api_back),
            "clients_back_s": _rounded(min(back) - self.started) if back else None,
            "workers": len(workers_after),
            "workers_same": workers_after == self.workers_before,
            "worker_timeouts": timeouts,
            "problems": problems,
        }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def run_with_restart(*, seconds: float = SECONDS, clients: int = CLIENTS, down_for: float = DOWN_FOR) -> dict:
    """The load on a throwaway cluster, stopped a third of the way in for `down_for` seconds; its figures."""
    with Cluster() as cluster, tempfile.TemporaryDirectory() as scratch:
        prepare_database(DATABASE, cluster.postgres)
        url = database_url(DATABASE, cluster.postgres)
        with Server(DATABASE, postgres=cluster.postgres, env=notes_env(scratch)) as server:
            outage = Outage(server, cluster, staff_session(server.port, url), after=seconds / 3, down_for=down_for)
            ledger = run_load(server.port, seconds=seconds, clients=clients, during=outage.run)
            restart = outage.figures(ledger)
        result = figures(ledger, check(url, ledger))
    result["restart"] = restart
    return result


def print_restart(restart: dict) -> None:
    print("== the database restarted under the load (throwaway cluster, pg_ctl stop -m fast, then start)")
    print(f"stopped           {restart['down_after_s']} s into the load, for {restart['down_s']} s")
    replies = ", ".join(f"{k}: {v:,}" for k, v in restart["replies_while_down"].items()) or "none"
    print(f"while down        clients' replies {replies}; slowest {restart['slowest_while_down_ms']} ms")
    healthz = ", ".join(f"{k}: {v}" for k, v in restart["healthz_while_down"].items())
    print(f"                  /healthz {healthz}")
    for name, problem in restart["probes_while_down"].items():
        print(f"  {name:<42} {problem or '503 as it should be'}")
    print(
        f"recovery          /healthz 200 after {restart['healthz_back_s']} s, API 200 after {restart['api_back_s']} s, "
        f"clients' first 2xx after {restart['clients_back_s']} s (from the database taking connections again)"
    )
    same = "the same" if restart["workers_same"] else "NOT the same"
    timeouts = restart["worker_timeouts"]
    print(f"gunicorn          {restart['workers']} workers, {same} before and after; WORKER TIMEOUT {timeouts}")
    print(f"problems          {len(restart['problems'])}")
    for line in restart["problems"]:
        print(f"  {line}")
