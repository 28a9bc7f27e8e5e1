import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


class Webhook:
    """A loopback chat webhook: records each body; `plan` maps an alert's subject to what it answers,
    in turn ("ok", a status code, or "silent" for never answering in time)."""

    def __init__(self):
        self.received: list[dict] = []
        self.plan: dict[str, list] = {}
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with webhook.lock:
                    webhook.received.append(body)
                    answers = webhook.plan.get(body.get("subject"), [])
                    answer = answers.pop(0) if answers else "ok"
                if answer == "silent":
                    time.sleep(3)
                    return
                self.send_response(200 if answer == "ok" else answer)
                self.end_headers()
                self.wfile.write(b"ok" if answer == "ok" else b"unavailable")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subjects(self) -> list[str]:
        with self.lock:
            return [body["subject"] for body in self.received]


@pytest.fixture
def webhook(settings):
    hook = Webhook()
    settings.AUTOPACK_ALERT_WEBHOOK_URL = hook.url
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def immediate_tasks(settings):
    """Tasks run as they are enqueued: for tests where their timing does not matter."""
    settings.TASKS = IMMEDIATE


def worker_database_url() -> str:
    """The test database as DATABASE_URL, for a worker process of its own."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def workers(settings):
    """Start real `db_worker` processes on the test database, with the test's settings; all stopped after."""
    settings.TASKS = DATABASE
    started = []

    def start(*args, **env):
        environment = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "AUTOPACK_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
            "AUTOPACK_ALERT_WEBHOOK_URL": settings.AUTOPACK_ALERT_WEBHOOK_URL,
            "AUTOPACK_MODELS_CONFIG": settings.AUTOPACK_MODELS_CONFIG,
            **env,
        }
        command = [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", *args]
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)


def wait_for(condition, *, seconds: float = 20, what: str = "the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
