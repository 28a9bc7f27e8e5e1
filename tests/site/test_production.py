"""AUTOPACK_ENV=production: its defaults, each overridable, a real SECRET_KEY required, and `check --deploy`."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_KEY = "k8Jq2vX9mN4pL7wR1tY6uE3oI5aS0dF8gH2jK4lZ7xC9vB1nM3qW5eR7tY9uI1oP"
# What the README lists as accepted under `check --deploy`, with its reason there.
ACCEPTED = {"security.W005", "security.W021"}
SHOWN = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "AUTOPACK_REQUIRE_LOGIN",
]


def run(args, **environment):
    # Only what the test names: no SECRET_KEY or switch from the caller's environment or a .env file.
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "autopack_site.settings", **environment}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def production_settings(**overrides) -> dict:
    code = "from django.conf import settings as s; import json; print(json.dumps({n: getattr(s, n) for n in %r}))"
    result = run(
        ["-c", "import django; django.setup(); " + code % SHOWN],
        AUTOPACK_ENV="production",
        SECRET_KEY=REAL_KEY,
        **overrides,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_turns_on_every_default_a_deployment_needs():
    assert production_settings() == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "AUTOPACK_REQUIRE_LOGIN": True,
    }


def test_each_production_default_is_overridable_by_django_s_name():
    assert production_settings(
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="60",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        AUTOPACK_REQUIRE_LOGIN="false",
    ) == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 60,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "AUTOPACK_REQUIRE_LOGIN": False,
    }


def test_production_refuses_to_start_without_a_real_secret_key():
    for key in ({}, {"SECRET_KEY": "short"}, {"SECRET_KEY": "django-insecure-" + REAL_KEY}):
        result = run(["manage.py", "check"], AUTOPACK_ENV="production", **key)
        assert result.returncode != 0
        assert "AUTOPACK_ENV=production needs a real SECRET_KEY" in result.stderr


def test_check_deploy_reports_only_what_the_readme_accepts():
    result = run(
        ["manage.py", "check", "--deploy"],
        AUTOPACK_ENV="production",
        SECRET_KEY=REAL_KEY,
        ALLOWED_HOSTS="dashboard.example.com",
    )
    assert result.returncode == 0, result.stderr
    reported = {line.split("(")[1].split(")")[0] for line in result.stderr.splitlines() if line.startswith("?: (")}
    assert reported == ACCEPTED
    readme = (ROOT / "README.md").read_text()
    for check in ACCEPTED:
        assert check in readme
