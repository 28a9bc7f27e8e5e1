"""Framing rules: the dashboard may be framed by the editors' Simple Browser, the admin never."""


class FramingPolicyMiddleware:
    """Lets dashboard pages be framed by the allowed ancestors and keeps `/admin/` unframeable.

    Chromium obeys CSP `frame-ancestors` over X-Frame-Options, so the admin needs its own
    `frame-ancestors 'none'`, not just the DENY header.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith("/admin/"):
            response._csp_replace = {"frame-ancestors": ["'none'"]}
        else:
            response.xframe_options_exempt = True
        return response
