"""The JSON API's plumbing: strict body parsing, write protection, and the one error shape.

Every API error is `{"error": "<message>", "details": {"<field path>": "<message>"}}`.
"""

import functools
import hmac
import ipaddress
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from autopack_site.errors import Conflict, DomainError, InvalidInput, NotFound
from routing.config import ConfigError

STATUS_FOR_ERROR = {InvalidInput: 400, NotFound: 404, Conflict: 409}
MAX_DEPTH = 32
CONFIG_BROKEN = "config/models.yaml has problems; fix them and retry"
# A 503 is an outage (the database, a broken models.yaml): clients are told when to try again.
RETRY_AFTER_SECONDS = 5


def error_response(status: int, message: str, details: dict | None = None, **headers) -> JsonResponse:
    if status == 503:
        headers.setdefault("Retry_After", str(RETRY_AFTER_SECONDS))
    response = JsonResponse({"error": message, "details": details or {}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def check_strings(data) -> None:
    """Refuse what json.loads lets through but the database or later code cannot store."""
    stack = [(data, 1, "body")]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"JSON is nested deeper than {MAX_DEPTH} levels", {path: "too deep"})
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, depth + 1, f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path)


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise InvalidInput("Text may not contain NUL characters", {path: "contains NUL"})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("Text contains a lone surrogate", {path: "not valid Unicode"}) from None


# One decoder for every request: json.loads with hooks would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json(raw: bytes):
    """Parse a request body as strict JSON: finite numbers, valid Unicode, bounded depth."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("Body is not valid UTF-8") from None
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        raise InvalidInput(f"JSON is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidInput("Body is not valid JSON", {"body": str(exc)[:200]}) from None
    # Only a \u escape can smuggle in a NUL or a lone surrogate (raw ones are invalid UTF-8 or JSON),
    # and only that many brackets can nest that deep: most bodies skip the walk.
    if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
        check_strings(data)
    return data


def query_id(request, name: str) -> str | None:
    """An id from the query string, or None when absent or one no database could hold (NUL, too long)."""
    value = request.GET.get(name) or None
    if value is None or "\x00" in value or len(value) > 200:
        return None
    return value


def query_int(request, name: str, *, default: int, maximum: int) -> int:
    """A positive integer from the query string; InvalidInput otherwise (without asking int() for 5,000 digits)."""
    raw = request.GET.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or not 1 <= int(raw) <= maximum:
        raise InvalidInput("Invalid query", {name: f"must be an integer from 1 to {maximum}"})
    return int(raw)


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def own_origin(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


def refuse_write(request) -> JsonResponse | None:
    """The API's write rules: same-site only, then API key or loopback."""
    origin = request.headers.get("Origin")
    # A browser names the page's origin; any other site's page must not drive our writes.
    if origin is not None and origin != own_origin(request):
        return error_response(403, f"Cross-site request refused (Origin {origin[:100]})")
    refusal = refuse_cross_site(request)
    if refusal is not None:
        return refusal
    if settings.AUTOPACK_API_KEY:
        given = request.headers.get("X-API-Key", "")
        if not hmac.compare_digest(given.encode(), settings.AUTOPACK_API_KEY.encode()):
            return error_response(401, "Missing or wrong X-API-Key header", WWW_Authenticate="X-API-Key")
    # The socket's address, never X-Forwarded-For: a client can write that header itself.
    elif not is_loopback(request.META.get("REMOTE_ADDR", "")):
        return error_response(403, "Writes without AUTOPACK_API_KEY are accepted from loopback clients only")
    return None


def refuse_cross_site(request) -> JsonResponse | None:
    """Browsers say where a request comes from in Sec-Fetch-Site, even when they send no Origin.

    A request from another site, or from a sibling origin of ours (another port or subdomain), is
    refused unless its Origin is ours or one the settings trust.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site not in ("cross-site", "same-site"):
        return None
    origin = request.headers.get("Origin")
    if origin is not None and (origin == own_origin(request) or origin in settings.AUTOPACK_TRUSTED_ORIGINS):
        return None
    return error_response(403, f"Request from another site refused (Sec-Fetch-Site: {site})")


NO_BODY = object()


def refuse_dashboard_write(request) -> JsonResponse | None:
    """The dashboard's write rules, for htmx requests from our own pages.

    Cookies do not survive the editors' cross-site Simple Browser frame, so there is no CSRF cookie to
    check. Instead: htmx's HX-Request header (a cross-site form cannot set it, and a cross-site
    fetch that sets it fails the CORS preflight we never grant) plus an Origin of our own. Then the
    same who-may-write rule as the API, with a staff login standing in for the API key.
    """
    origin = request.headers.get("Origin")
    if origin is None or (origin != own_origin(request) and origin not in settings.AUTOPACK_TRUSTED_ORIGINS):
        return error_response(403, "Dashboard changes must come from the dashboard's own pages")
    refusal = refuse_cross_site(request)
    if refusal is not None:
        return refusal
    user = getattr(request, "user", None)
    if user and user.is_staff:
        return None
    if settings.AUTOPACK_API_KEY:
        # With a key set, loopback proves nothing (a reverse proxy on this host makes everyone loopback).
        given = request.headers.get("X-API-Key", "")
        if hmac.compare_digest(given.encode(), settings.AUTOPACK_API_KEY.encode()):
            return None
        return error_response(403, "Dashboard changes need a staff login (or the API key) on this server")
    if not is_loopback(request.META.get("REMOTE_ADDR", "")):
        return error_response(403, "Dashboard changes need a loopback client or a staff login")
    return None


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
    except ConfigError as exc:
        if owns_transaction:
            transaction.set_rollback(True)
        return error_response(503, CONFIG_BROKEN, dict(exc.problems))


def _status(exc: DomainError) -> int:
    for kind, status in STATUS_FOR_ERROR.items():
        if isinstance(exc, kind):
            return status
    return 400
