"""The server as `make run` starts it: idle or slow clients never stall the dashboard."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """gunicorn with the project's config and two workers, on its own SQLite file."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}", "WHITENOISE_USE_FINDERS": "true"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "autopack_site.wsgi", "--config", "autopack_site/gunicorn_conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "2"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    yield url, port
    server.terminate()
    server.wait(timeout=10)


def test_idle_and_slow_clients_do_not_stall_the_server(served):
    url, port = served
    # Four clients that connect and say nothing, and four that send half a request and stop.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    for conn in slow:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    # Let the workers take these connections first: a sync worker would now be stuck on one.
    time.sleep(0.5)
    try:
        started = time.monotonic()
        for _ in range(10):
            assert urllib.request.urlopen(f"{url}/healthz", timeout=5).status == 200
        assert time.monotonic() - started < 3
    finally:
        for conn in idle + slow:
            conn.close()


@pytest.mark.django_db
def test_pages_travel_compressed(client):
    call_command("demo")
    page = client.get("/dashboard/", headers={"Accept-Encoding": "gzip"})
    assert page["Content-Encoding"] == "gzip"
    assert len(page.content) < 20_000
    plain = client.get("/dashboard/")
    assert "Content-Encoding" not in plain and len(plain.content) > len(page.content)
