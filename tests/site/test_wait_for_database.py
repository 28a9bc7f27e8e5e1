"""`manage.py wait_for_database`, which start.sh runs before migrate: it waits, says why, then gives up."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.served import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_it_says_why_it_waits_and_gives_up_at_the_timeout():
    # A port nobody listens on: every attempt is refused at once.
    url = f"postgres://postgres@127.0.0.1:{free_port()}/absent"
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": url}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", "wait_for_database", "--timeout", "1.5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert 1.5 <= time.monotonic() - started < 20
    assert "Waiting for the database (connection failed:" in result.stderr
    assert "The database did not answer within 1.5 s" in result.stderr


def test_it_returns_at_once_when_the_database_answers(tmp_path):
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = subprocess.run(
        [sys.executable, "manage.py", "wait_for_database"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stderr == ""
