"""Framing rules: the dashboard may be framed by the editors' Simple Browser, the admin never."""

from csp.middleware import CSPMiddleware, PolicyParts
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware

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


class GZipMiddleware(DjangoGZipMiddleware):
    """Django's GZipMiddleware, but server-sent events go out as they come.

    Gzip holds a stream's bytes back until its buffer fills, which would turn a streamed answer into
    one late burst.
    """

    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith("text/event-stream"):
            return response
        return super().process_response(request, response)
