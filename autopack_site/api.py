"""The JSON API's decorator: method check, write rules, strict body, one transaction, error mapping.

Every API error is `{"error": "<message>", "details": {"<field path>": "<message>"}}`, built by
`autopack_site.responses.error_response`; domain errors map to their statuses here, in one place.
"""

import functools

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.views.decorators.csrf import csrf_exempt

from autopack_site.access import refuse_dashboard_write, refuse_write
from autopack_site.errors import ConfigError, Conflict, DomainError, InvalidInput, NotFound
from autopack_site.responses import error_response
from autopack_site.strict_json import check_strings, parse_json

# A broken models.yaml is an outage of routing, not a fault of the request.
STATUS_FOR_ERROR = {InvalidInput: 400, NotFound: 404, Conflict: 409, ConfigError: 503}

NO_BODY = object()


def read_json_body(request, *, limit: int, optional: bool):
    """The parsed JSON body, or NO_BODY when `optional` and the body is empty (JSON null is a body)."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(limit)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _TooLarge(limit) from None
    if len(raw) > limit:
        raise _TooLarge(limit)
    # Even without a body, the JSON content type (or htmx's header) is required: a browser can send
    # neither cross-site without a CORS preflight, so no page can make this a "simple request".
    if request.content_type != "application/json" and request.headers.get("HX-Request") != "true":
        raise _WrongType()
    if optional and not raw.strip():
        return NO_BODY
    if request.content_type != "application/json":
        raise _WrongType()
    return parse_json(raw)


class _TooLarge(Exception):
    def __init__(self, limit):
        self.limit = limit


class _WrongType(Exception):
    pass


def api_view(
    *,
    methods: tuple[str, ...],
    write: bool = True,
    body_optional: bool = False,
    max_body=None,
    dashboard: bool = False,
):
    """Wrap a JSON view: method check, write protection, strict body, one transaction, error mapping.

    The view reads the parsed body from `request.json`. With `dashboard`, an htmx request follows the
    dashboard's rules instead, and its form fields (query parameters for DELETE) are the body.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error_response(405, f"Method {request.method} not allowed here", {}, Allow=", ".join(methods))
            if not write:
                return _call(view, request, *args, owns_transaction=False, **kwargs)
            if dashboard and request.headers.get("HX-Request") == "true":
                refusal = refuse_dashboard_write(request)
                if refusal is not None:
                    return refusal
                fields = request.POST if request.method == "POST" else request.GET
                request.json = {key: fields.get(key) for key in fields}
                try:
                    check_strings(request.json)
                except InvalidInput as exc:
                    return error_response(400, exc.message, exc.details)
                with transaction.atomic():
                    return _call(view, request, *args, owns_transaction=True, **kwargs)
            refusal = refuse_write(request)
            if refusal is not None:
                return refusal
            limit = max_body or settings.AUTOPACK_MAX_BODY_BYTES
            try:
                request.json = read_json_body(request, limit=limit, optional=body_optional)
            except _TooLarge:
                return error_response(413, f"Body is larger than {limit} bytes")
            except _WrongType:
                return error_response(415, "Content-Type must be application/json")
            except InvalidInput as exc:
                return error_response(400, exc.message, exc.details)
            # One transaction per request: an error anywhere writes nothing.
            with transaction.atomic():
                return _call(view, request, *args, owns_transaction=True, **kwargs)

        wrapper.json_api = True
        return csrf_exempt(wrapper)

    return decorator


def _call(view, request, *args, owns_transaction: bool, **kwargs):
    try:
        return view(request, *args, **kwargs)
    except DomainError as exc:
        # The error is answered, not raised, so our atomic block must be told to roll back.
        if owns_transaction:
            transaction.set_rollback(True)
        return error_response(_status(exc), exc.message, exc.details)


def _status(exc: DomainError) -> int:
    for kind, status in STATUS_FOR_ERROR.items():
        if isinstance(exc, kind):
            return status
    return 400
