import io
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autopack_site.settings")


def read_chunked_bodies(app):
    """Give Django the body of a chunked request, which arrives without a Content-Length.

    Django reads exactly Content-Length bytes, so a `Transfer-Encoding: chunked` body would look
    empty. When the server has already decoded the chunks (`wsgi.input_terminated`, as gunicorn
    does), read the body, at most one byte past the upload limit so an oversized one is still
    refused as too large, and state its length.
    """

    def application(environ, start_response):
        if (
            environ.get("wsgi.input_terminated")
            and not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return application


application = read_chunked_bodies(get_wsgi_application())
