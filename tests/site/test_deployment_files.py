"""docker-compose.yml and .env.example, read as Docker would read them (no Docker engine runs here)."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def settings_read() -> set[str]:
    """The variables settings.py reads through django-environ."""
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', (ROOT / "autopack_site" / "settings.py").read_text()))


def test_the_app_is_published_on_loopback_only_and_the_database_not_at_all():
    services = compose()["services"]
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "ports" not in services["db"]
    assert services["app"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "/healthz" in " ".join(services["app"]["healthcheck"]["test"])


def test_the_app_is_given_only_settings_the_server_reads():
    environment = compose()["services"]["app"]["environment"]
    assert set(environment) <= settings_read()
    assert environment["DATABASE_URL"].startswith("postgres://autopack:${POSTGRES_PASSWORD}@db:5432/")


def test_env_example_names_the_secrets_compose_requires_and_holds_none():
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"POSTGRES_PASSWORD", "SECRET_KEY", "AUTOPACK_API_KEY"}
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if re.match(r"^\w+=", line)
    )
    assert {name: example[name] for name in required} == dict.fromkeys(required, "")


def test_secrets_stay_out_of_git_and_out_of_the_image():
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore).read_text().splitlines()
