"""AUTOPACK_REQUIRE_LOGIN: every page, fragment and form needs a staff login; the login page; rate limits; headers."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver

from apikeys.services import create_api_key
from notes.models import HumanNote
from tests.conftest import plan
from tests.routing.conftest import ROUTING

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
HTMX = {"HX-Request": "true", "Origin": "http://testserver", "HX-Current-URL": "http://testserver/dashboard/"}


@pytest.fixture
def login_required(settings, api, models_config, tmp_path):
    models_config(ROUTING)
    settings.AUTOPACK_NOTES_FILE = str(tmp_path / "notes.md")
    api.start(plan())
    settings.AUTOPACK_REQUIRE_LOGIN = True


@pytest.fixture
def staff():
    return User.objects.create_user("dana", password=PASSWORD, is_staff=True)


def dashboard_views():
    """(path, view) of every page, fragment and form, with path parameters filled in; not the API or the admin."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                continue  # the admin, which has its own login
            path = prefix + str(entry.pattern)
            if isinstance(entry, URLPattern) and not getattr(entry.callback, "json_api", False):
                yield re.sub(r"<[^>]+>", "run-1", re.sub(r"<int:[^>]+>", "1", path)), entry.callback

    return [
        ("/" + path, view)
        for path, view in walk(get_resolver().url_patterns)
        if getattr(view, "login_required", True) and path not in ("login/", "logout/")
    ]


DASHBOARD = dashboard_views()


def test_the_dashboard_has_many_views_to_protect():
    paths = [path for path, _ in DASHBOARD]
    assert {"/dashboard/", "/dashboard/usage/panel", "/dashboard/forms/override", "/docs"} <= set(paths)


@pytest.mark.usefixtures("login_required")
@pytest.mark.parametrize("path", [path for path, _ in DASHBOARD])
def test_every_page_fragment_and_form_redirects_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    framed = client.post(path, {}, headers=HTMX)
    assert framed.status_code == 401
    assert framed["HX-Redirect"] == "/login/?next=http%3A%2F%2Ftestserver%2Fdashboard%2F"


@pytest.mark.usefixtures("login_required")
def test_a_staff_login_opens_the_dashboard_and_records_who_added_a_note(client, staff):
    page = client.get("/login/?next=/dashboard/%3Frun%3Drun-1")
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post("/login/", {"username": "dana", "password": PASSWORD, "next": "/dashboard/?run=run-1"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/?run=run-1"
    assert client.get("/dashboard/?run=run-1").status_code == 200
    added = client.post("/dashboard/forms/note", {"note": "Keep the schema", "run_id": "run-1"}, headers=HTMX)
    assert added.status_code == 200 and added.get("X-Refused") is None, added.content
    assert HumanNote.objects.get().author == "dana"


@pytest.mark.usefixtures("login_required")
def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client):
    User.objects.create_user("guest", password=PASSWORD)
    client.post("/login/", {"username": "guest", "password": PASSWORD})
    assert client.get("/dashboard/").status_code == 302


@pytest.mark.usefixtures("login_required")
def test_the_api_needs_a_key_or_a_staff_login_to_read_and_a_key_to_write(client, staff):
    assert client.get("/runs/").status_code == 401
    key = create_api_key(name="reader")
    assert client.get("/runs/", headers={"Authorization": f"Bearer {key.secret}"}).status_code == 200
    client.force_login(staff)
    assert client.get("/runs/").status_code == 200
    refused = client.post("/runs/start", plan("run-2"), content_type="application/json")
    assert refused.status_code == 401
    assert client.get("/healthz").status_code == 200


def test_with_login_off_a_refused_change_links_to_the_login_page(client, settings, models_config):
    models_config(ROUTING)
    settings.AUTOPACK_API_KEY = "bootstrap-0123456789"
    form = {"role": "builder", "category": "docs", "complexity": "low", "model": "o3"}
    response = client.post("/dashboard/forms/override", form, headers=HTMX)
    assert response["X-Refused"] == "true"
    body = response.content.decode()
    assert "Dashboard changes need a staff login on this server" in body
    assert 'href="/login/?next=http%3A%2F%2Ftestserver%2Fdashboard%2F"' in body


def test_with_login_off_a_poll_reads_no_session(client, api, models_config):
    models_config(ROUTING)
    api.start(plan())
    client.cookies["sessionid"] = "anything"
    with CaptureQueriesContext(connection) as queries:
        client.get("/dashboard/notes/list", {"run": "run-1"})
    assert not [q for q in queries.captured_queries if "session" in q["sql"] or "auth_user" in q["sql"]]


@pytest.mark.usefixtures("login_required")
def test_with_login_on_a_poll_costs_one_query_more_the_user(client, staff, settings):
    client.force_login(staff)
    client.get("/dashboard/notes/list", {"run": "run-1"})
    with CaptureQueriesContext(connection) as on:
        client.get("/dashboard/notes/list", {"run": "run-1"})
    settings.AUTOPACK_REQUIRE_LOGIN = False
    with CaptureQueriesContext(connection) as off:
        client.get("/dashboard/notes/list", {"run": "run-1"})
    assert len(on) == len(off) + 1
    assert "auth_user" in on.captured_queries[0]["sql"]


def test_session_and_csrf_cookies_are_partitioned_on_loopback(client, staff):
    page = client.get("/login/", HTTP_HOST="127.0.0.1:8000")
    csrf = page.cookies["csrftoken"].output()
    assert "SameSite=None; Partitioned" in csrf and "Secure" in csrf
    response = client.post("/login/", {"username": "dana", "password": PASSWORD}, HTTP_HOST="127.0.0.1:8000")
    session = response.cookies["sessionid"].output()
    assert "SameSite=None; Partitioned" in session and "Secure" in session and "HttpOnly" in session


def test_cookies_keep_django_s_defaults_on_a_plain_http_lan_address(client, settings):
    settings.ALLOWED_HOSTS = ["192.168.1.5"]
    csrf = client.get("/login/", HTTP_HOST="192.168.1.5:8000").cookies["csrftoken"].output()
    assert "SameSite=Lax" in csrf and "Partitioned" not in csrf and "Secure" not in csrf


def test_failed_logins_lock_out_an_address_and_say_when_it_ends(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert client.post("/login/", {"username": "dana", "password": "wrong"}).status_code == 200
    locked = client.post("/login/", {"username": "someone", "password": "wrong"})
    assert locked.status_code == 429
    assert re.search(r"Try again after \d\d:\d\d:\d\d UTC \(1[45]\xa0minutes from now\)", locked.content.decode())
    # The right password from this address waits too.
    assert client.post("/login/", {"username": "dana", "password": PASSWORD}).status_code == 429


def test_failed_logins_lock_out_a_user_name_from_any_address(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(3):
        client.post("/login/", {"username": "dana", "password": "wrong"}, REMOTE_ADDR=f"10.0.0.{n + 1}")
    locked = client.post("/login/", {"username": "dana", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9")
    assert locked.status_code == 429 and b"Login locked" in locked.content


def test_security_headers_and_a_csp_without_inline_scripts(client):
    for path in ("/login/", "/dashboard/"):
        response = client.get(path)
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.content.decode())
    assert "frame-ancestors 'none'" in client.get("/admin/login/")["Content-Security-Policy"]
