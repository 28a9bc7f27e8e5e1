"""The JSON API's decorator: method check, write rules, strict body, one transaction, error mapping.

Every API error is `{"error": "<message>", "details": {"<field path>": "<message>"}}`, built by
`autopack_site.responses.error_response`; domain errors map to their statuses here, in one place.
"""

import functools
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.csrf import csrf_exempt

from autopack_site.access import dashboard_refusal, refuse_unauthenticated, refuse_write
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


def api_view(*, methods: tuple[str, ...], write: bool = True, body_optional: bool = False, max_body=None):
    """Wrap a JSON view: method check, write protection, strict body, one transaction, error mapping.

    The view reads the parsed body from `request.json`.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error_response(405, f"Method {request.method} not allowed here", {}, Allow=", ".join(methods))
            # A GET changes nothing, so a route that also takes writes reads like any other GET.
            if not write or request.method == "GET":
                refusal = _refuse_read(request)
                if refusal is not None:
                    return refusal
                return _call(view, request, *args, owns_transaction=False, **kwargs)
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


def _refuse_read(request):
    """Reads are open, unless the server requires logins: then a staff login (a read needs no CSRF token) or a key."""
    if not settings.AUTOPACK_REQUIRE_LOGIN or request.user.is_staff:
        return None
    return refuse_unauthenticated(request)


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


# Where a refused dashboard change is said: beside what it would have changed (the id of htmx's
# target, or of the control itself, plus "-error").
TRIGGER_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,120}")
# Fills the box's text only: the box keeps its own element, class and role wherever it sits.
REFUSAL = '<span id="{}" hx-swap-oob="innerHTML">Not done: {}</span>'
LOGIN_LINK = ' <a href="{}?{}">Log in</a>'


def dashboard_form(*, methods: tuple[str, ...]):
    """Wrap an HTML view that makes a dashboard change: htmx from our pages, form fields as the body.

    The dashboard's write rules (autopack_site.access), then one transaction. The view reads the
    fields from `request.form` and answers a fragment. A refusal, by the rules or by a service,
    answers 200 with nothing swapped but the reason, put out of band into the element whose id is the
    target's (or the asking control's) plus "-error": the page keeps what it shows, and the person
    reads why in place.
    Cookies do not survive the editors' sandboxed frame, so there is no CSRF cookie; the rules above
    stand in for it.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error_response(405, f"Method {request.method} not allowed here", {}, Allow=", ".join(methods))
            refusal = dashboard_refusal(request)
            if refusal is not None:
                return refused(request, refusal.message, needs_login=refusal.needs_login)
            fields = request.POST if request.method == "POST" else request.GET
            request.form = {key: fields.get(key) for key in fields}
            try:
                check_strings(request.form)
            except InvalidInput as exc:
                return refused(request, exc.message)
            with transaction.atomic():
                try:
                    return view(request, *args, **kwargs)
                except DomainError as exc:
                    transaction.set_rollback(True)
                    reasons = "; ".join(f"{field}: {reason}" for field, reason in exc.details.items())
                    return refused(request, f"{exc.message} ({reasons})" if reasons else exc.message)

        return csrf_exempt(wrapper)

    return decorator


def refused(request, message: str, *, needs_login: bool = False) -> HttpResponse:
    """Nothing swapped; the reason goes beside the control that asked (or into the page's own box),
    with a link to the login page when logging in would let the change through."""
    target = request.headers.get("HX-Target") or request.headers.get("HX-Trigger") or ""
    box = f"{target}-error" if TRIGGER_ID.fullmatch(target) else "dashboard-error"
    if needs_login:
        back = url_has_allowed_host_and_scheme(
            request.headers.get("HX-Current-URL", ""), allowed_hosts={request.get_host()}
        )
        next_page = request.headers["HX-Current-URL"] if back else reverse("dashboard")
        message = format_html("{}." + LOGIN_LINK, message, reverse("login"), urlencode({"next": next_page}))
    response = HttpResponse(format_html(REFUSAL, box, message))
    response["HX-Reswap"] = "none"
    # Lets the page tell a refusal from a change that went through, without reading the body.
    response["X-Refused"] = "true"
    return response
