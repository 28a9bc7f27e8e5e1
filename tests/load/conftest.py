"""The served app under load: gunicorn as `make run` starts it, driven by the benchmarks' load driver (bench/)."""

import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

# The bench's modules import each other by their bare names, as they do when run as scripts.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


@pytest.fixture
def postgres_server() -> str:
    """The address of the PostgreSQL server the tests run on, as bench/_db.py names servers."""
    db = settings.DATABASES["default"]
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
