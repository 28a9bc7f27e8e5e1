"""Shared set-up for the benchmarks: a dedicated PostgreSQL database per size, migrated."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def database_url(name: str, server: str = SERVER) -> str:
    return f"{server}/{name}"


def create_database(name: str, server: str = SERVER) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str, server: str = SERVER) -> None:
    """Drop database `name` if it exists, ending any session still connected to it."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_database(name: str, server: str = SERVER) -> None:
    """Create database `name` if needed and migrate it with manage.py, without setting Django up here."""
    create_database(name, server)
    env = {**os.environ, "DATABASE_URL": database_url(name, server)}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], check=True, cwd=ROOT, env=env)


def use_database(name: str) -> None:
    """Create database `name` if needed, point Django at it and migrate. Call before importing models."""
    create_database(name)
    setup_django(database_url(name))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def setup_django(url: str) -> None:
    """Point Django at the database at `url` and set it up. Call before importing models."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autopack_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
