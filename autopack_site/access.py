"""Who may write: the API's rules and the dashboard's, each answered as our JSON error."""

import hmac
import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.http import JsonResponse

from apikeys.models import ApiKey
from apikeys.services import any_live_key, key_for_secret
from autopack_site.responses import error_response


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def own_origin(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


@dataclass(frozen=True)
class Caller:
    """Who a request speaks for: a named key, the bootstrap key, a logged-in person, or an anonymous loopback client."""

    # The key's name, BOOTSTRAP_KEY, the person's user name, or "" for a loopback client.
    name: str
    key: ApiKey | None = None
    is_person: bool = False


BOOTSTRAP_KEY = "AUTOPACK_API_KEY"
KEY_NEEDED = "This server needs an API key: send X-API-Key: <secret> or Authorization: Bearer <secret>"
KEY_REFUSED = "Unknown or revoked API key"
LOOPBACK_ONLY = "Writes without an API key are accepted from loopback clients only"


class NotAuthenticated(Exception):
    """The request may not go on: `status` is 401 (no usable key) or 403 (no key set up, and not loopback)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def presented_secret(request) -> str | None:
    """The secret in X-API-Key, or in `Authorization: Bearer` (as the OpenAI SDK sends it); None without either."""
    given = request.headers.get("X-API-Key")
    if given is not None:
        return given
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return None


def keys_required() -> bool:
    """Whether loopback alone is no longer enough: a key is set up, or the server requires logins.

    With a key set, loopback proves nothing (a reverse proxy on this host makes everyone loopback).
    """
    return bool(settings.AUTOPACK_API_KEY) or settings.AUTOPACK_REQUIRE_LOGIN or any_live_key()


def authenticate(request) -> Caller:
    """Who an API request speaks for, by its key; raises NotAuthenticated when it may not go on.

    A presented key must be live (a named key, or AUTOPACK_API_KEY); without one, only a loopback client
    of a server with no key set up passes, as an anonymous Caller. Sessions are not looked at: the
    API takes no CSRF token, so a browser's cookie must never stand in for a key.
    """
    secret = presented_secret(request)
    if secret is not None:
        bootstrap = settings.AUTOPACK_API_KEY
        if bootstrap and hmac.compare_digest(secret.encode(), bootstrap.encode()):
            return Caller(name=BOOTSTRAP_KEY)
        key = key_for_secret(secret) if secret else None
        if key is None:
            raise NotAuthenticated(401, KEY_REFUSED)
        return Caller(name=key.name, key=key)
    if keys_required():
        raise NotAuthenticated(401, KEY_NEEDED)
    # The socket's address, never X-Forwarded-For: a client can write that header itself.
    if not is_loopback(request.META.get("REMOTE_ADDR", "")):
        raise NotAuthenticated(403, LOOPBACK_ONLY)
    return Caller(name="")


def refuse_write(request) -> JsonResponse | None:
    """The API's write rules: same-site only, then a live API key (or loopback where no key is set up).

    Sets `request.caller` for the view, which records who sent what.
    """
    origin = request.headers.get("Origin")
    # A browser names the page's origin; any other site's page must not drive our writes.
    if origin is not None and origin != own_origin(request):
        return error_response(403, f"Cross-site request refused (Origin {origin[:100]})")
    refusal = refuse_cross_site(request)
    if refusal is not None:
        return refusal
    return refuse_unauthenticated(request)


def refuse_unauthenticated(request) -> JsonResponse | None:
    """`authenticate` as our JSON error, or None with `request.caller` set."""
    try:
        request.caller = authenticate(request)
    except NotAuthenticated as exc:
        headers = {"WWW_Authenticate": 'Bearer realm="autopack"'} if exc.status == 401 else {}
        return error_response(exc.status, exc.message, **headers)
    return None


# Headers a reverse proxy adds: a request carrying one was relayed, so its loopback address proves nothing.
FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")
SCRAPE_REFUSED = "Metrics are served to loopback clients and to API keys only"


def refuse_scrape(request) -> JsonResponse | None:
    """Who may read `/metrics`: any live API key, or a loopback client that no proxy relayed.

    Sets `request.caller` when a key was presented.
    """
    if presented_secret(request) is not None:
        return refuse_unauthenticated(request)
    if is_loopback(request.META.get("REMOTE_ADDR", "")) and not any(h in request.META for h in FORWARDING_HEADERS):
        return None
    return error_response(403, SCRAPE_REFUSED)


def refuse_cross_site(request) -> JsonResponse | None:
    """`cross_site_refusal` as our JSON error."""
    refusal = cross_site_refusal(request)
    return error_response(403, refusal) if refusal is not None else None


def cross_site_refusal(request) -> str | None:
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
    return f"Request from another site refused (Sec-Fetch-Site: {site})"


class Refusal(NamedTuple):
    message: str
    # Whether logging in would let the change through: the refusal then links to the login page.
    needs_login: bool = False


def dashboard_refusal(request) -> Refusal | None:
    """Why a dashboard change may not be made here, or None: the rules for htmx requests from our pages.

    Without a login, no cookie need exist (none survives the editors' frame unless it is partitioned),
    so there may be no CSRF cookie to check. Instead: htmx's HX-Request header (a cross-site form
    cannot set it, and a cross-site fetch that sets it fails the CORS preflight we never grant) plus
    an Origin of our own. Then who may write: a staff login; else, unless the server requires logins,
    a live API key, or a loopback client where no key is set up. Sets `request.caller` when it passes.
    """
    if request.headers.get("HX-Request") != "true":
        return Refusal("Dashboard changes come from the dashboard's own pages")
    origin = request.headers.get("Origin")
    if origin is None or (origin != own_origin(request) and origin not in settings.AUTOPACK_TRUSTED_ORIGINS):
        return Refusal("Dashboard changes must come from the dashboard's own pages")
    cross_site = cross_site_refusal(request)
    if cross_site is not None:
        return Refusal(cross_site)
    user = getattr(request, "user", None)
    if user and user.is_staff:
        request.caller = Caller(name=user.get_username(), is_person=True)
        return None
    if settings.AUTOPACK_REQUIRE_LOGIN:
        return Refusal("Dashboard changes need a staff login", needs_login=True)
    try:
        request.caller = authenticate(request)
    except NotAuthenticated as exc:
        if exc.status == 401 and presented_secret(request) is None:
            return Refusal("Dashboard changes need a staff login on this server", needs_login=True)
        if exc.status == 403:
            return Refusal("Dashboard changes need a loopback client or a staff login", needs_login=True)
        return Refusal(exc.message)
    return None


def actor(request, named: str = "", via: str = "api") -> str:
    """Who made a change, for the record: the login, else the key (with the name the request gives), else
    the name the request gives, else where it came from."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()
    named = named.strip()
    caller = getattr(request, "caller", None)
    if caller is not None and caller.name:
        return f"{named} (key {caller.name})"[:150] if named else caller.name
    return named or via
