"""start.sh as the image runs it, against a PostgreSQL database of its own: migrate, serve, answer, stop.

No Docker engine runs here, so this is the image's start without the image: the same script, the
same commands, the local PostgreSQL in place of compose's.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from tests.conftest import QUICK_START
from tests.served import free_port

pytestmark = pytest.mark.postgres_only

ROOT = Path(__file__).resolve().parents[2]
KEY = "start-script-key-" + secrets.token_hex(8)
# Migrating an empty database is the slow part; the rest starts in a few seconds.
READY_WITHIN = 45


@pytest.fixture(scope="module")
def database_url():
    """A database of its own on the test server, dropped at the end, as a fresh deployment's would be."""
    conf = settings.DATABASES["default"]
    server = {"host": conf["HOST"] or "127.0.0.1", "port": conf["PORT"] or 5432, "user": conf["USER"]}
    name = f"autopack_start_{secrets.token_hex(4)}"
    with psycopg.connect(dbname="postgres", password=conf["PASSWORD"] or None, autocommit=True, **server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            login = quote(server["user"]) + (f":{quote(conf['PASSWORD'], safe='')}" if conf["PASSWORD"] else "")
            yield f"postgres://{login}@{server['host']}:{server['port']}/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def processes_in_group(group: int) -> list[str]:
    """The command lines of the live processes in a process group (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name is in parentheses and may hold spaces: the fields after it are plain.
            state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(pgrp) == group and state != "Z":
            found.append(cmdline)
    return found


class Started:
    def __init__(self, process: subprocess.Popen, url: str, output: Path):
        self.process, self.url, self.output = process, url, output

    def request(self, path: str, body: dict | None = None, key: str | None = KEY) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, data, headers), timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def log(self) -> str:
        return self.output.read_text(errors="replace")


@pytest.fixture
def start(database_url, tmp_path):
    """Run `sh start.sh` as CI would; stop it as `docker stop` does (TERM to the script) at the end."""
    started = []

    def run(**environment) -> Started:
        port = free_port()
        env = {
            # Only what a container would be given: no SECRET_KEY or switch from this shell.
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "TMPDIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "AUTOPACK_API_KEY": KEY,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WORKERS": "2",
            **environment,
        }
        output = tmp_path / "start.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                ["sh", "start.sh"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Started(process, f"http://127.0.0.1:{port}", output)
        started.append(server)
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            assert process.poll() is None, f"start.sh ended early:\n{server.log()}"
            try:
                if server.request("/healthz", key=None)[0] == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/healthz did not answer 200 within {READY_WITHIN} s:\n{server.log()}")

    yield run
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


def stop(server: Started) -> int:
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=30)
    deadline = time.monotonic() + 5
    while processes_in_group(server.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in_group(server.process.pid) == [], server.log()
    return code


def healthz_count(server: Started) -> float:
    status, body = server.request("/metrics", key=None)
    assert status == 200, body
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "autopack_http_request_duration_seconds_count" and sample.labels == {
                "view": "healthz",
                "method": "GET",
                "status": "200",
            }:
                return sample.value
    return 0


@pytest.mark.parametrize("task_worker", ["1", "0"])
def test_start_script_migrates_serves_the_api_and_stops_cleanly(start, tmp_path, task_worker):
    server = start(AUTOPACK_TASK_WORKER=task_worker)
    commands = processes_in_group(server.process.pid)
    assert sum("gunicorn" in c for c in commands) == 3, commands  # the master and two workers
    assert any("db_worker" in c for c in commands) == (task_worker == "1"), commands

    body = {**QUICK_START, "run": {**QUICK_START["run"], "run_id": f"start-{task_worker}"}}
    assert server.request("/runs/start", body, key=None)[0] == 401
    status, answer = server.request("/runs/start", body)
    assert status == 201, answer
    status, answer = server.request(f"/runs/start-{task_worker}")
    assert status == 200 and json.loads(answer)["tiers"][0]["phases"][0]["phase_id"] == "F1.1"

    # Each request is a new connection, which either worker may take: the scrape adds up both.
    before = healthz_count(server)
    for _ in range(10):
        assert server.request("/healthz", key=None)[0] == 200
    assert healthz_count(server) == before + 10

    assert stop(server) == 0
    log = server.log()
    assert "Listening at: http://127.0.0.1:" in log
    # One line per request, from Django, naming the key; gunicorn's own access log is off.
    assert "autopack.requests: POST /runs/start 201 " in log and " key:AUTOPACK_API_KEY\n" in log
    assert 'HTTP/1.1" 200' not in log
    # The metrics directory the script made for this start is gone with it.
    assert list(tmp_path.glob("autopack-metrics.*")) == []
