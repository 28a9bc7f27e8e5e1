"""Who may write: the API's rules and the dashboard's, each answered as our JSON error."""

import hmac
import ipaddress

from django.conf import settings
from django.http import JsonResponse

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


def dashboard_refusal(request) -> str | None:
    """Why a dashboard change may not be made here, or None: the rules for htmx requests from our pages.

    Cookies do not survive the editors' cross-site Simple Browser frame, so there is no CSRF cookie to
    check. Instead: htmx's HX-Request header (a cross-site form cannot set it, and a cross-site
    fetch that sets it fails the CORS preflight we never grant) plus an Origin of our own. Then the
    same who-may-write rule as the API, with a staff login standing in for the API key.
    """
    if request.headers.get("HX-Request") != "true":
        return "Dashboard changes come from the dashboard's own pages"
    origin = request.headers.get("Origin")
    if origin is None or (origin != own_origin(request) and origin not in settings.AUTOPACK_TRUSTED_ORIGINS):
        return "Dashboard changes must come from the dashboard's own pages"
    cross_site = cross_site_refusal(request)
    if cross_site is not None:
        return cross_site
    user = getattr(request, "user", None)
    if user and user.is_staff:
        return None
    if settings.AUTOPACK_API_KEY:
        # With a key set, loopback proves nothing (a reverse proxy on this host makes everyone loopback).
        given = request.headers.get("X-API-Key", "")
        if hmac.compare_digest(given.encode(), settings.AUTOPACK_API_KEY.encode()):
            return None
        return "Dashboard changes need a staff login (or the API key) on this server"
    if not is_loopback(request.META.get("REMOTE_ADDR", "")):
        return "Dashboard changes need a loopback client or a staff login"
    return None


def actor(request, named: str = "", via: str = "api") -> str:
    """Who made a change, for a run's history: the login, else the name the request gives, else where it came from."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()
    return named.strip() or via
