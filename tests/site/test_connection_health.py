"""Persistent PostgreSQL connections: checked without a round trip while quiet, replaced once the server ends them."""

import time

import psycopg
import pytest
from django.db import connection
from django.test import Client

from runs.models import Run

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def start_request():
    # What Django does at the start and end of every request for a persistent connection.
    connection.close_if_unusable_or_obsolete()


def statements_sent(monkeypatch) -> list[str]:
    """Every statement psycopg sends on Django's connection from now on, health checks included."""
    sent = []
    original = psycopg.Cursor.execute

    def execute(cursor, query, *args, **kwargs):
        if cursor.connection is connection.connection:
            sent.append(query if isinstance(query, str) else str(query))
        return original(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return sent


def test_a_quiet_connection_serves_a_request_without_a_select_1(monkeypatch):
    assert connection.health_check_enabled
    Run.objects.count()
    start_request()
    sent = statements_sent(monkeypatch)
    Run.objects.count()
    assert len(sent) == 1 and "SELECT 1" not in sent[0]


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it():
    Run.objects.count()
    first = connection.connection
    backend = connection.connection.info.backend_pid
    start_request()
    _terminate(first)
    assert Run.objects.count() == 0
    assert connection.connection is not first and connection.connection.info.backend_pid != backend


def test_healthz_is_503_when_the_server_ended_its_connection_and_takes_no_new_one(monkeypatch):
    Run.objects.count()
    _terminate(connection.connection)
    start_request()

    def refuse(*args, **kwargs):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(connection.Database, "connect", refuse)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def _terminate(conn) -> None:
    """End the server side of `conn`, as a restart does, and wait for its goodbye to reach the socket."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _readable(conn):
        time.sleep(0.01)


def _readable(conn) -> bool:
    import select

    return bool(select.select([conn.fileno()], [], [], 0)[0])
