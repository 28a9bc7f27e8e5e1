"""The served app under load, and through a database restart, checked against a ledger of what it answered.

    .venv/bin/python bench/load.py              # 8 clients for 30 s, PostgreSQL at BENCH_POSTGRES
    .venv/bin/python bench/load.py --restart    # the same on a throwaway cluster, stopped for 5 s mid-load

gunicorn serves the app as `make run` does (two gthread workers). A run with two phases per client,
four to a tier, is started through POST /runs/start; then each client thread posts usage events (a
tenth of them replays of request ids already sent, by any client), moves its own phases between
EXECUTING, GATE and CI_RUNNING, and adds notes, keeping a ledger of what it sent and what each reply
said. After the load every phase gets its final state, and `bench/ledger.py` reads the database and
compares it with the ledger: events, hourly and daily totals, per-run and per-sender totals, phase,
tier and run figures and states, and the usage windows as the dashboard computes them. The database
is left for reading (the restart's throwaway cluster is removed).
"""

import argparse
import http.client
import json
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from _db import ROOT, SERVER, database_url, drop_database, prepare_database
from serve import Server

CLIENTS = 8
SECONDS = 30.0
REPLAY_SHARE = 0.1
# Of each client's requests: usage events, then phase moves; the rest are notes.
EVENT_SHARE, MOVE_SHARE = 0.8, 0.15
# Each client moves two phases of its own, so no two clients race one phase's state; tiers hold four.
PHASES_PER_CLIENT, PHASES_PER_TIER = 2, 4
# Under way, phases only move between these: every such move is legal, and none finishes the run.
CYCLE = ("EXECUTING", "GATE", "CI_RUNNING")
# Each phase's state once the load is over (else COMPLETE): a tier with a skipped phase, one with a failed one.
FINAL_STATES = {"P5": "SKIPPED", "P9": "FAILED"}
MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4.1-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("google", "gemini-2.5-flash"),
    # Outside the catalog: recorded without a price.
    ("local", "llama-3.1-8b"),
)
ROLES = ("builder", "auditor", "agent:planner")
# A client waits this long after a 503 or no answer: long enough not to spin, short enough to see recovery.
BACKOFF_SECONDS = 0.2
REQUEST_TIMEOUT = 60


@dataclass
class Answer:
    status: int | None  # None: no answer (refused, reset, timed out)
    headers: dict
    body: bytes
    at: float  # time.monotonic() when the request was sent
    seconds: float
    error: str = ""

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Connection:
    """One client's keep-alive connection; after a failure the next request opens a new one."""

    def __init__(self, port: int):
        self.port = port
        self.conn = None

    def send(self, method: str, path: str, body=None, headers=None) -> Answer:
        headers = dict(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        at = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(None, {}, b"", at, time.monotonic() - at, type(exc).__name__)
        if response.will_close:
            self.close()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, content, at, time.monotonic() - at)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Reply(NamedTuple):
    kind: str  # event, replay, move, note
    status: int | None
    at: float
    seconds: float


@dataclass
class Ledger:
    """What the clients sent and what each reply said, kept as they go. Thread-safe through `lock`.

    An event is `recorded` once a reply said so (201 imported, or 200 duplicate); one sent but never
    answered so (a 503, no answer) has an unknown outcome: it may be stored or not, but then wholly.
    `faults` are replies that break a rule: a request_id imported twice, a conflict, a 500.
    """

    run_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    replies: list[Reply] = field(default_factory=list)
    sent: dict[str, dict] = field(default_factory=dict)
    # The request_ids of `sent` in the order sent, to pick replays from.
    sent_ids: list[str] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    imported: Counter = field(default_factory=Counter)
    accepted: int = 0
    duplicates: int = 0
    replays: int = 0
    notes_accepted: int = 0
    notes_unknown: int = 0
    moves_accepted: int = 0
    faults: list[str] = field(default_factory=list)
    final_phase_states: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0

    def reply(self, kind: str, answer: Answer) -> None:
        with self.lock:
            self.replies.append(Reply(kind, answer.status, answer.at, answer.seconds))
            if answer.status == 503 and "retry-after" not in answer.headers:
                self.faults.append(f"{kind}: 503 without Retry-After")
            elif answer.status is not None and answer.status >= 500 and answer.status != 503:
                self.faults.append(f"{kind}: {answer.status} {answer.body[:200]!r}")

    def event(self, request_id: str, answer: Answer) -> None:
        """A reply to an event or a replay. Whichever attempt reaches the server first records the event;
        every other attempt must be a duplicate."""
        body = answer.json() if answer.status in (200, 201) else None
        with self.lock:
            if answer.status == 201 and body and body.get("imported") == 1:
                self.imported[request_id] += 1
                if self.imported[request_id] > 1:
                    self.faults.append(f"{request_id} was recorded {self.imported[request_id]} times")
                self.recorded.add(request_id)
                self.accepted += 1
            elif answer.status == 200 and body and body.get("duplicates") == 1:
                self.recorded.add(request_id)
                self.duplicates += 1
            elif answer.status not in (None, 503):
                self.faults.append(f"event {request_id}: {answer.status} {answer.body[:200]!r}")

    def unknown(self) -> set[str]:
        return set(self.sent) - self.recorded

    def for_checker(self) -> dict:
        """What bench/ledger.py compares the database with."""
        return {
            "run_id": self.run_id,
            "sent": self.sent,
            "recorded": sorted(self.recorded),
            "notes_accepted": self.notes_accepted,
            "notes_unknown": self.notes_unknown,
            **expected_states(self.final_phase_states),
        }


def expected_states(phases: dict[str, str]) -> dict:
    """The tier and run states the API's rules give for these final phase states (none still running)."""
    tiers: dict[str, list[str]] = {}
    for phase_id, state in phases.items():
        tiers.setdefault(tier_of(int(phase_id[1:]) - 1), []).append(state)
    return {
        "phase_states": phases,
        "tier_states": {t: "FAILED" if "FAILED" in states else "COMPLETE" for t, states in tiers.items()},
        "run_state": "DONE_FAILED_REQUIRES_HUMAN_REVIEW" if "FAILED" in phases.values() else "DONE_SUCCESS",
    }


def tier_of(index: int) -> str:
    return f"T{index // PHASES_PER_TIER + 1}"


def plan(run_id: str, clients: int) -> dict:
    """The run's start payload: P1, P2, ... for the clients, four to a tier."""
    count = PHASES_PER_CLIENT * clients
    phases = [
        {
            "phase_id": f"P{n + 1}",
            "phase_index": n,
            "tier_id": tier_of(n),
            "name": f"Phase {n + 1}",
            "task_category": "tests",
            "complexity": "medium",
        }
        for n in range(count)
    ]
    tier_ids = dict.fromkeys(p["tier_id"] for p in phases)
    tiers = [{"tier_id": t, "tier_index": i, "name": f"Tier {t[1:]}"} for i, t in enumerate(tier_ids)]
    return {"run": {"run_id": run_id, "token_cap": 10**12, "max_phases": count}, "tiers": tiers, "phases": phases}


def start_run(port: int, run_id: str, clients: int) -> None:
    answer = Connection(port).send("POST", "/runs/start", plan(run_id, clients))
    if answer.status != 201:
        raise RuntimeError(f"POST /runs/start answered {answer.status}: {answer.body[:300]!r}")


class LoadClient:
    """One client thread: usage events (some replays), moves of its own phases, and notes, until `deadline`."""

    def __init__(self, number: int, port: int, ledger: Ledger, phases: list[str], tag: str):
        self.number = number
        self.http = Connection(port)
        self.ledger = ledger
        self.phases = phases
        self.tag = tag
        self.rng = random.Random(f"{tag}-{number}")
        self.sent = 0
        self.cycle = dict.fromkeys(phases, 0)

    def run(self, deadline: float) -> None:
        try:
            while time.monotonic() < deadline:
                roll = self.rng.random()
                if roll < EVENT_SHARE:
                    answer = self.post_event()
                elif roll < EVENT_SHARE + MOVE_SHARE:
                    answer = self.move_phase()
                else:
                    answer = self.add_note()
                if answer.status in (None, 503):
                    time.sleep(BACKOFF_SECONDS)
        finally:
            self.http.close()

    def post_event(self) -> Answer:
        ledger = self.ledger
        with ledger.lock:
            replay = bool(ledger.sent) and self.rng.random() < REPLAY_SHARE
            if replay:
                request_id = self.rng.choice(ledger.sent_ids)
                event = ledger.sent[request_id]
                ledger.replays += 1
            else:
                self.sent += 1
                request_id = f"{self.tag}-c{self.number}-{self.sent}"
                event = self.new_event(request_id)
                ledger.sent[request_id] = event
                ledger.sent_ids.append(request_id)
        answer = self.http.send("POST", "/api/usage", event)
        ledger.reply("replay" if replay else "event", answer)
        ledger.event(request_id, answer)
        return answer

    def new_event(self, request_id: str) -> dict:
        rng = self.rng
        provider, model = rng.choice(MODELS)
        prompt, completion = rng.randint(100, 20_000), rng.randint(10, 4_000)
        event = {
            "provider": provider,
            "model": model,
            "role": rng.choice(ROLES),
            "prompt_tokens": prompt,
            "cached_prompt_tokens": rng.randint(0, prompt // 2),
            "completion_tokens": completion,
            "latency_ms": rng.randint(200, 20_000),
            "request_id": request_id,
        }
        # Most name one of this client's phases; some only the run (planning), a phase the run does not
        # have (counted on the run itself), or no run at all.
        where = rng.random()
        if where < 0.85:
            event |= {"run_id": self.ledger.run_id, "phase_id": rng.choice(self.phases)}
        elif where < 0.92:
            event |= {"run_id": self.ledger.run_id}
        elif where < 0.96:
            event |= {"run_id": self.ledger.run_id, "phase_id": "planning"}
        return event

    def move_phase(self) -> Answer:
        phase = self.rng.choice(self.phases)
        self.cycle[phase] += 1
        state = CYCLE[self.cycle[phase] % len(CYCLE)]
        body = {"state": state, "builder_attempts": self.cycle[phase]}
        answer = self.http.send("POST", f"/runs/{self.ledger.run_id}/phases/{phase}/update_status", body)
        self.ledger.reply("move", answer)
        with self.ledger.lock:
            if answer.status == 200:
                self.ledger.moves_accepted += 1
            elif answer.status not in (None, 503):
                self.ledger.faults.append(f"move {phase} to {state}: {answer.status} {answer.body[:200]!r}")
        return answer

    def add_note(self) -> Answer:
        body = {"note": f"Load note {self.number}.{self.rng.randrange(10**9)}", "run_id": self.ledger.run_id}
        answer = self.http.send("POST", "/dashboard/human-notes", body)
        self.ledger.reply("note", answer)
        with self.ledger.lock:
            if answer.status == 200:
                self.ledger.notes_accepted += 1
            elif answer.status in (None, 503):
                self.ledger.notes_unknown += 1
            else:
                self.ledger.faults.append(f"note: {answer.status} {answer.body[:200]!r}")
        return answer


def phases_of(client: int) -> list[str]:
    return [f"P{PHASES_PER_CLIENT * client + k + 1}" for k in range(PHASES_PER_CLIENT)]


def run_load(port: int, *, seconds: float = SECONDS, clients: int = CLIENTS, during=None) -> Ledger:
    """Start a run, load the server for `seconds`, then give every phase its final state.

    `during(ledger)`, when given, runs in this thread while the clients work (the restart, say).
    """
    tag = secrets.token_hex(4)
    ledger = Ledger(run_id=f"load-{tag}")
    start_run(port, ledger.run_id, clients)
    workers = [LoadClient(n, port, ledger, phases_of(n), tag) for n in range(clients)]
    ledger.started = time.monotonic()
    deadline = ledger.started + seconds
    threads = [threading.Thread(target=w.run, args=(deadline,), name=f"load-client-{w.number}") for w in workers]
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            during(ledger)
    finally:
        for thread in threads:
            thread.join()
    ledger.ended = time.monotonic()
    finish_phases(port, ledger, clients)
    return ledger


def finish_phases(port: int, ledger: Ledger, clients: int) -> None:
    """Move every phase of the load to its final state; the run then finishes itself."""
    http = Connection(port)
    for phase_id in (p for n in range(clients) for p in phases_of(n)):
        state = FINAL_STATES.get(phase_id, "COMPLETE")
        path = f"/runs/{ledger.run_id}/phases/{phase_id}/update_status"
        answer = send_until_answered(http, "POST", path, {"state": state})
        if answer.status != 200:
            ledger.faults.append(f"final move of {phase_id} to {state}: {answer.status} {answer.body[:200]!r}")
        ledger.final_phase_states[phase_id] = state
    http.close()


def send_until_answered(http: Connection, method: str, path: str, body=None, *, within: float = 30.0) -> Answer:
    """Send until the reply is something other than a 503 or no answer, for at most `within` seconds."""
    give_up = time.monotonic() + within
    while True:
        answer = http.send(method, path, body)
        if answer.status not in (None, 503) or time.monotonic() > give_up:
            return answer
        time.sleep(BACKOFF_SECONDS)


def check(url: str, ledger: Ledger) -> dict:
    """Compare the database at `url` with the ledger, in a process of its own (bench/ledger.py)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(ledger.for_checker(), handle)
        handle.flush()
        result = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("ledger.py")), url, handle.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(f"bench/ledger.py failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def figures(ledger: Ledger, report: dict) -> dict:
    """The load's figures: requests, replies by status, throughput and latency, events against the ledger."""
    statuses = Counter("no answer" if r.status is None else r.status for r in ledger.replies)
    latencies = sorted(r.seconds * 1000 for r in ledger.replies if r.status is not None)
    elapsed = ledger.ended - ledger.started
    return {
        "seconds": round(elapsed, 1),
        "requests": len(ledger.replies),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "requests_per_s": round(len(ledger.replies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
        "events_sent": len(ledger.sent),
        "accepted": ledger.accepted,
        "replays": ledger.replays,
        "duplicates": ledger.duplicates,
        "unknown": len(ledger.unknown()),
        "unknown_stored": report["unknown_stored"],
        "counted": report["counted"],
        "moves_accepted": ledger.moves_accepted,
        "notes_accepted": ledger.notes_accepted,
        "mismatches": ledger.faults + report["mismatches"],
        "checks": report["checks"],
    }


def print_figures(title: str, result: dict) -> None:
    print(f"== {title}")
    statuses = ", ".join(f"{k}: {v:,}" for k, v in result["statuses"].items())
    print(f"requests          {result['requests']:,} in {result['seconds']} s ({result['requests_per_s']:,} req/s)")
    print(f"replies           {statuses}")
    print(f"latency           p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    print(
        f"usage events      {result['accepted']:,} accepted (201), {result['counted']:,} counted in the database; "
        f"{result['replays']:,} replays, {result['duplicates']:,} answered as duplicates"
    )
    print(
        f"unknown outcome   {result['unknown']:,} events never answered 2xx (503 or cut off), "
        f"{result['unknown_stored']:,} of them stored (whole)"
    )
    print(f"phase moves       {result['moves_accepted']:,} accepted; notes {result['notes_accepted']:,} accepted")
    mismatches = result["mismatches"]
    print(f"mismatches        {len(mismatches)} (of {result['checks']:,} comparisons)")
    for line in mismatches[:20]:
        print(f"  {line}")


def run_on_server(database: str, *, seconds: float = SECONDS, clients: int = CLIENTS) -> dict:
    """The load on a fresh `database` of the PostgreSQL server at BENCH_POSTGRES, left there for reading."""
    drop_database(database)
    prepare_database(database)
    with tempfile.TemporaryDirectory() as scratch, Server(database, env=notes_env(scratch)) as server:
        ledger = run_load(server.port, seconds=seconds, clients=clients)
    result = figures(ledger, check(database_url(database), ledger))
    result["database"] = f"{SERVER.rsplit('@', 1)[-1]}/{database}"
    return result


def notes_env(scratch: str) -> dict:
    """The served app appends its notes to a file of the load's own, not the project's."""
    return {"AUTOPACK_NOTES_FILE": str(Path(scratch) / "notes.md")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--restart", action="store_true", help="on a throwaway cluster, stopped and started mid-load")
    parser.add_argument("--database", default="autopack_bench_load", help="database on BENCH_POSTGRES (recreated)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    if args.restart:
        from cluster import ClusterUnavailable
        from restart import print_restart, run_with_restart

        try:
            result = run_with_restart(seconds=args.seconds, clients=args.clients)
        except ClusterUnavailable as exc:
            sys.exit(f"--restart needs a throwaway PostgreSQL cluster: {exc}")
    else:
        result = run_on_server(args.database, seconds=args.seconds, clients=args.clients)
    if args.json:
        print(json.dumps(result))
    else:
        print_figures(f"{args.clients} clients for {args.seconds:g} s", result)
        if args.restart:
            print_restart(result["restart"])
        else:
            print(f"database          {result['database']} (kept for reading)")
    broken = result["mismatches"] or result.get("restart", {}).get("problems")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
