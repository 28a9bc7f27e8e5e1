"""Several app servers on one database: what one server changes, another sees within seconds."""

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils.module_loading import import_string

from tests.alerts.conftest import worker_database_url
from tests.served import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def other_server():
    """gunicorn with one worker on the test database, as a second app server behind a load balancer."""
    env = {"DATABASE_URL": worker_database_url(), "AUTOPACK_REQUIRE_LOGIN": "true", "WHITENOISE_USE_FINDERS": "true"}
    with gunicorn(env, workers=1) as server:
        yield server.url


def status_with_session(url: str, session_key: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}"})
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as answer:
        return answer.code


def test_a_logout_on_one_server_ends_the_session_on_every_other(other_server):
    client = Client()
    client.force_login(User.objects.create_user("alice", is_staff=True))
    session_key = client.session.session_key
    # With logins required, the API's reads take a staff login (or a key).
    runs = f"{other_server}/runs/"
    assert status_with_session(runs, session_key) == 200
    # This process logs out as another app server would: the session is gone from the database.
    import_string(settings.SESSION_ENGINE + ".SessionStore")(session_key).delete()
    # The other server may still hold the session in memory, for the sessions cache's few seconds at most.
    deadline = time.monotonic() + settings.CACHES["sessions"]["TIMEOUT"] + 2
    while status_with_session(runs, session_key) == 200:
        assert time.monotonic() < deadline, "the other server still accepts the session"
        time.sleep(0.25)
    assert status_with_session(runs, session_key) == 401
