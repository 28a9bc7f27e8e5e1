"""The server as `make run` starts it: idle or slow clients never stall the dashboard."""

import socket
import time
import urllib.request

import pytest
from django.core.management import call_command

from tests.served import gunicorn


@pytest.fixture
def served(tmp_path):
    """gunicorn with the project's config and two workers, on its own SQLite file."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}", "WHITENOISE_USE_FINDERS": "true"}
    with gunicorn(env, workers=2) as server:
        yield server.url, server.port


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
