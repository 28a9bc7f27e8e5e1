"""Eight clients at once on the served app: every accepted usage event is counted once, everywhere."""

import pytest
from _db import database_url, drop_database, prepare_database
from django.conf import settings
from load import check, figures, run_load
from serve import Server

pytestmark = pytest.mark.postgres_only

SECONDS = 8


@pytest.fixture
def served(postgres_server, tmp_path):
    """gunicorn with two workers on a fresh database of its own beside the test database, dropped afterwards."""
    name = f"{settings.DATABASES['default']['NAME']}_served"
    drop_database(name, postgres_server)
    try:
        prepare_database(name, postgres_server)
        with Server(name, postgres=postgres_server, env={"AUTOPACK_NOTES_FILE": str(tmp_path / "notes.md")}) as server:
            yield server, database_url(name, postgres_server)
    finally:
        drop_database(name, postgres_server)


def test_every_accepted_event_is_counted_once_in_every_total_and_window(served):
    server, url = served
    ledger = run_load(server.port, seconds=SECONDS)
    result = figures(ledger, check(url, ledger))
    assert result["mismatches"] == []
    assert result["statuses"].keys() <= {"200", "201"}
    assert result["counted"] == result["accepted"] > 100
    assert result["duplicates"] == result["replays"] > 0
    assert result["moves_accepted"] > 0 and result["notes_accepted"] > 0
