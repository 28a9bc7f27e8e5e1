"""The WSGI entry point as gunicorn drives it: chunked bodies arrive decoded, with no Content-Length."""

import io
import json

import pytest
from django.core import signals
from django.db import close_old_connections

from autopack_site.wsgi import application
from runs.models import Run
from tests.conftest import plan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    # As Django's test client does: a request must not close the connection holding the test's data.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def serve(body: bytes, **environ):
    """One request through the WSGI application, as gunicorn hands over a chunked one."""
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/runs/start",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    status = []
    chunks = application(base | environ, lambda s, headers, exc_info=None: status.append(s))
    content = b"".join(chunks)
    return int(status[0].split()[0]), json.loads(content)


def test_a_chunked_body_is_read_not_taken_as_empty():
    status, body = serve(json.dumps(plan("chunked-1")).encode())
    assert status == 201, body
    assert Run.objects.filter(run_id="chunked-1").exists()


def test_a_chunked_body_over_the_limit_is_413(settings):
    settings.AUTOPACK_MAX_BODY_BYTES = 100
    status, body = serve(json.dumps(plan("chunked-2")).encode())
    assert status == 413
    assert not Run.objects.exists()
