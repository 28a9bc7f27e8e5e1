"""Framing rules (the dashboard may be framed by the editors' Simple Browser, the admin never), the
cookies that keep a login inside that frame, the login the dashboard may require, compression
that leaves server-sent events alone, and the log line and metrics of every request."""

import logging
import time

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from autopack_site import metrics

ADMIN_PREFIX = "/admin/"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy from settings, with `frame-ancestors 'none'` for `/admin/`.

    Chromium obeys CSP `frame-ancestors` over X-Frame-Options, so the admin needs its own
    `frame-ancestors 'none'`, not just the DENY header. `get_policy_parts` is django-csp's hook for this.
    """

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(ADMIN_PREFIX):
            parts.replace = {**(parts.replace or {}), "frame-ancestors": ["'none'"]}
        return parts


class XFrameOptionsExemptMiddleware:
    """Exempts every page but the admin's from X-Frame-Options: DENY; CSP `frame-ancestors` says who may frame them.

    Listed below Django's XFrameOptionsMiddleware, it marks the response as a view's
    `@xframe_options_exempt` would, before that middleware sees it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path_info.startswith(ADMIN_PREFIX):
            response.xframe_options_exempt = True
        return response


# Hosts whose plain-http pages browsers count as secure contexts, where Secure cookies are kept.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class PartitionedCookiesMiddleware:
    """Session and CSRF cookies that survive the editors' cross-site frame: `SameSite=None; Secure; Partitioned`.

    Chromium keeps no other cookie in a cross-site frame while third-party cookies are blocked, and
    Django 5.2 cannot set `Partitioned`. Applied over HTTPS and on loopback hosts (secure contexts
    even over http); a plain-http LAN address would see a Secure cookie dropped, so it keeps Django's.
    Listed above the session and CSRF middleware, it sees their cookies after they are set.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.names = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)

    def __call__(self, request):
        response = self.get_response(request)
        if not response.cookies or not (request.is_secure() or _is_loopback_host(request)):
            return response
        for name in self.names:
            morsel = response.cookies.get(name)
            if morsel is not None:
                morsel["secure"] = True
                # Python 3.11's cookie module knows no Partitioned attribute: it rides on SameSite's value.
                morsel["samesite"] = "None; Partitioned"
        return response


def _is_loopback_host(request) -> bool:
    host = request.get_host()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_HOSTS or name.endswith(".localhost")


class LoginRequiredMiddleware:
    """With AUTOPACK_REQUIRE_LOGIN, every dashboard page, fragment and form needs a logged-in staff user.

    A page is redirected to the login page; an htmx request gets 401 with `HX-Redirect`, so htmx
    loads the login page in the whole window instead of swapping it into a panel. The JSON API checks
    keys itself (`autopack_site.api`); views marked `login_not_required` (the login page, the health
    check) are open. With the setting off nothing here touches the session: polls cost no query more.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not settings.AUTOPACK_REQUIRE_LOGIN or not getattr(view_func, "login_required", True):
            return None
        if getattr(view_func, "json_api", False) or request.user.is_staff:
            return None
        if request.headers.get("HX-Request") == "true":
            current = request.headers.get("HX-Current-URL", "")
            back = current if url_has_allowed_host_and_scheme(current, allowed_hosts={request.get_host()}) else ""
            response = HttpResponse("Log in to see this", status=401, content_type="text/plain")
            response["HX-Redirect"] = _login_url(back or reverse("dashboard"))
            return response
        return HttpResponseRedirect(_login_url(request.get_full_path()))


def _login_url(next_page: str) -> str:
    return f"{reverse('login')}?{urlencode({'next': next_page})}"


class GZipMiddleware(DjangoGZipMiddleware):
    """Django's GZipMiddleware, but server-sent events go out as they come.

    Gzip holds a stream's bytes back until its buffer fills, which would turn a streamed answer into
    one late burst.
    """

    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith("text/event-stream"):
            return response
        return super().process_response(request, response)


request_log = logging.getLogger("autopack.requests")
# A poll whose answer is "nothing changed": an open dashboard sends one every few seconds per panel.
UNCHANGED = (204, 304)
# Any other method is counted as "other", so a client cannot add series to /metrics at will.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class RequestLogMiddleware:
    """One log line per request (who made it, method, path, status, duration) and its `/metrics` figures.

    gunicorn's access log cannot name the API key or the user, which only Django knows, so it is off and
    this logs instead. A GET answered "nothing changed" (204, 304) is logged at DEBUG, anything else at
    INFO. A streamed answer (the gateway's, a CSV export) is timed to its start, not to its last byte.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        status = response.status_code
        method = request.method if request.method in METHODS else "other"
        metrics.count_request(view=self.view_name(request), method=method, status=status, seconds=seconds)
        level = logging.DEBUG if status in UNCHANGED and method == "GET" else logging.INFO
        if request_log.isEnabledFor(level):
            path = request.get_full_path()
            request_log.log(level, "%s %s %s %.1fms %s", method, path, status, seconds * 1000, who_asked(request))
        return response

    def view_name(self, request) -> str:
        match = request.resolver_match
        if match is not None:
            return match.view_name
        return "static" if request.path_info.startswith(self.static_prefix) else "unmatched"


def who_asked(request) -> str:
    """`key:<name>` or `user:<name>` for whoever the request was checked as, else "-"."""
    caller = getattr(request, "caller", None)
    if caller is not None and caller.name:
        name, kind = caller.name, "user" if caller.is_person else "key"
    else:
        # Only a user something already loaded: `request.user` would read the session and the user
        # (queries) for a poll that needed neither. Django's AuthenticationMiddleware keeps it here.
        user = getattr(request, "_cached_user", None)
        if user is None or not user.is_authenticated:
            return "-"
        name, kind = user.get_username(), "user"
    # Key names are free text: a newline in one must not forge a log line.
    return f"{kind}:{name if name.isprintable() else ascii(name)}"
