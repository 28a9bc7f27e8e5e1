"""Serve the app exactly as `make run` does, on a free local port, and load it with wrk.

The gunicorn command line is read from `make -n run`, so a change to `make run` (workers, worker
class) is what gets measured. DEBUG is off; `demo --if-empty` is skipped (the bench makes its own runs).
"""

import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

from _db import ROOT, SERVER, database_url

# Throughput: a few clients at once, as several open dashboards poll. Latency: one request at a time.
WRK_LOAD = ["-t1", "-c8", "-d5s"]
WRK_ONE_AT_A_TIME = ["-t1", "-c1", "-d5s"]
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def gunicorn_command(port: int, workers: int | None = None) -> list[str]:
    dry_run = subprocess.run(
        ["make", "-n", "run", "HOST=127.0.0.1", f"PORT={port}", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in dry_run.splitlines() if "gunicorn" in line and " --bind " in line)
    command = shlex.split(line)
    if workers is not None:
        command[command.index("--workers") + 1] = str(workers)
    return command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app under gunicorn, on database `name` (with `make run`'s worker count unless `workers`). Use as a
    context manager.

    `postgres` is the PostgreSQL server holding the database; `env` adds to the app's environment.
    """

    def __init__(self, name: str, workers: int | None = None, *, postgres: str = SERVER, env: dict | None = None):
        self.port = free_port()
        self.workers = workers
        self.env = {**os.environ, "DATABASE_URL": database_url(name, postgres), "DEBUG": "false", **(env or {})}
        # gunicorn's own output, kept out of the table; closed with the server.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = None

    def __enter__(self):
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        command = gunicorn_command(self.port, self.workers)
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)
        for _ in range(300):
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not answer on port {self.port}: {' '.join(command)}")

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def output(self) -> str:
        """What gunicorn has logged so far: its access log, worker boots and exits, errors."""
        # Read without moving the file's offset, which gunicorn shares and writes at.
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = dict(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def get(self, path: str, headers=None) -> tuple[int, dict, bytes]:
        return self.request("GET", path, headers=headers)

    def worker_pids(self) -> list[int]:
        pid = self.process.pid
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def wrk(url: str, options=WRK_LOAD, headers: dict | None = None) -> dict:
    """Requests/s and latency percentiles (ms) from `wrk --latency`; errors and non-2xx/3xx answers counted."""
    command = ["wrk", *options, "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for percent, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)$", out, re.M):
        result[f"p{percent}"] = float(value) * UNITS_MS[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["bad"] = int(bad.group(1)) if bad else 0
    # Sync workers close each connection, so wrk's "read" errors there are closed sockets, not failures.
    result["errors"] = int(errors.group(1)) + int(errors.group(4)) if errors else 0
    return result
