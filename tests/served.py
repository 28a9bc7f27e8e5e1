"""The project under gunicorn with its own config, for tests that need the real server and its workers."""

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(port: int, path: str) -> int:
    """One GET on a connection of its own, as a browser's poll often is; its status, or 0 when refused."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return 0


@dataclass
class Served:
    url: str
    port: int
    log: object

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def gunicorn(env: dict, *, workers: int, start_within: float = 30) -> Iterator[Served]:
    """gunicorn with autopack_site/gunicorn_conf.py on a free port, `env` added to the environment;
    stopped on leaving, its output kept until then."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "autopack_site.wsgi", "--config", "autopack_site/gunicorn_conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + start_within
            while status_of(port, "/healthz") != 200:
                assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
            served = Served(f"http://127.0.0.1:{port}", port, log)
            yield served
        finally:
            process.terminate()
            process.wait(timeout=30)
