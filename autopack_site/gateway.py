"""The OpenAI-compatible gateway: /v1/chat/completions, /v1/responses and /v1/models.

Any agent built on the OpenAI SDK gets routing, notes, pause and budgets, and exact usage by pointing
its base URL here. The views only translate: HTTP body and headers in, `routing.calls.place_call`
(the path LlmService takes too), the provider's answer out as it was sent, plus our headers saying
what happened. Errors come in OpenAI's shape, `{"error": {"message", "type", "code"}}`, so the SDK
raises its usual exceptions.
"""

import functools
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from autopack_site.access import refuse_write
from autopack_site.contract import GatewayChatBody, GatewayResponsesBody, validate_body
from autopack_site.errors import ConfigError, InvalidInput
from autopack_site.strict_json import parse_json
from routing.budgets import BudgetExhausted, RunFinished, RunPaused
from routing.calls import (
    CHAT,
    RESPONSES,
    Call,
    LlmError,
    ProviderCoolingDown,
    ProviderFailed,
    ProviderRefused,
    place_call,
)
from routing.config import get_config
from routing.router import ChainCoolingDown, QuotaExhausted, RoutingError, UnknownModel

AUTO_MODEL = "autopack/auto"
# Hints read from headers, or from the body's metadata under the same names.
HINTS = {
    "run_id": "X-Autopack-Run",
    "phase_id": "X-Autopack-Phase",
    "role": "X-Autopack-Role",
    "category": "X-Autopack-Category",
    "complexity": "X-Autopack-Complexity",
}
DEFAULT_ROLE = "builder"
# How long one provider attempt may take, and how long a critical call may wait out a cooldown.
TIMEOUT_SECONDS = 120.0
BODIES = {CHAT: GatewayChatBody, RESPONSES: GatewayResponsesBody}


def openai_error(status: int, message: str, kind: str, code: str, **headers) -> JsonResponse:
    """One error in OpenAI's shape: the SDK turns it into its own exception for the status."""
    response = JsonResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def gateway_view(*, method: str):
    """Method check and the API's key rule, answered in OpenAI's error shape."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method != method:
                return openai_error(405, f"Method {request.method} not allowed here", "invalid_request_error", "")
            refusal = _refuse(request)
            if refusal is not None:
                return refusal
            return view(request, *args, **kwargs)

        # Keys, as for the JSON API, never the dashboard's login (its document is OpenAI's, not ours).
        wrapper.login_required = False
        return csrf_exempt(wrapper)

    return decorator


@gateway_view(method="GET")
def models(request):
    config = get_config()
    listed = [{"id": AUTO_MODEL, "object": "model", "created": 0, "owned_by": "autopack"}]
    listed += [
        {"id": name, "object": "model", "created": 0, "owned_by": info.provider}
        for name, info in sorted(config.models.items())
    ]
    return JsonResponse({"object": "list", "data": listed})


@gateway_view(method="POST")
def chat_completions(request):
    return _relay(request, CHAT)


@gateway_view(method="POST")
def responses(request):
    return _relay(request, RESPONSES)


def _relay(request, api: str):
    try:
        call = _call_from(request, api)
        result = place_call(call, timeout=TIMEOUT_SECONDS)
    except Exception as exc:
        refusal = _error_for(exc)
        if refusal is None:
            raise
        return refusal
    if call.stream:
        response = StreamingHttpResponse(result.chunks, content_type=result.content_type)
        # Proxies in front of us must pass each event on as it comes.
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    else:
        response = HttpResponse(result.content, content_type=result.content_type)
    response["X-Autopack-Model"] = result.decision.model
    response["X-Autopack-Decision"] = _header_text(_decision_text(result))
    response["X-Autopack-Request-Id"] = result.request_id
    return response


def _call_from(request, api: str) -> Call:
    """The request as a Call: the body as sent, but for our hints taken out of its metadata."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise InvalidInput(f"Body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes") from None
    data = parse_json(raw)
    checked = validate_body(BODIES[api], data, "Invalid request body")
    body = {key: value for key, value in data.items() if key != "model"}
    metadata = dict(checked.metadata or {})
    hints = {}
    for name, header in HINTS.items():
        hints[name] = request.headers.get(header) or metadata.pop(header, None) or None
    if checked.metadata is not None:
        # Our hints are for us, not for the provider.
        if metadata:
            body["metadata"] = metadata
        else:
            body.pop("metadata", None)
    return Call(
        api=api,
        body=body,
        role=hints["role"] or DEFAULT_ROLE,
        category=hints["category"],
        complexity=hints["complexity"],
        run_id=hints["run_id"],
        phase_id=hints["phase_id"],
        model=None if checked.model == AUTO_MODEL else checked.model,
        caller=_caller(request),
        stream=checked.stream,
    )


def _refuse(request) -> JsonResponse | None:
    """The run API's key rule (autopack_site.access, which takes the SDK's Bearer token), in OpenAI's shape."""
    refusal = refuse_write(request)
    if refusal is None:
        return None
    message = json.loads(refusal.content)["error"]
    kind, code = ("authentication_error", "invalid_api_key") if refusal.status_code == 401 else ("permission_error", "")
    return openai_error(refusal.status_code, message, kind, code)


def _caller(request) -> str:
    """Who sent the call, for the usage records: the API key's name, or blank for a loopback client."""
    return request.caller.name


def _error_for(exc: Exception) -> HttpResponse | None:
    """Our errors as OpenAI's, with the matching status; None for what is a bug."""
    if isinstance(exc, ProviderRefused):
        # The provider's own refusal of the request (bad parameters, say): passed on as it said it.
        return HttpResponse(exc.content, status=exc.status, content_type=exc.content_type)
    if isinstance(exc, InvalidInput):
        reasons = "; ".join(f"{path}: {reason}" for path, reason in exc.details.items())
        message = f"{exc.message} ({reasons})" if reasons else exc.message
        return openai_error(400, message, "invalid_request_error", "invalid_request")
    if isinstance(exc, UnknownModel):
        return openai_error(404, f"{exc}; GET /v1/models lists them", "invalid_request_error", "model_not_found")
    if isinstance(exc, (ProviderCoolingDown, ChainCoolingDown)):
        return openai_error(
            429, str(exc), "rate_limit_error", "provider_cooling_down", Retry_After=str(exc.retry_after)
        )
    if isinstance(exc, QuotaExhausted):
        return openai_error(429, str(exc), "insufficient_quota", "quota_exhausted")
    if isinstance(exc, RoutingError):
        return openai_error(400, str(exc), "invalid_request_error", "invalid_routing_hint")
    if isinstance(exc, RunPaused):
        return openai_error(409, str(exc), "invalid_request_error", "run_paused")
    if isinstance(exc, RunFinished):
        return openai_error(409, str(exc), "invalid_request_error", "run_finished")
    if isinstance(exc, BudgetExhausted):
        return openai_error(429, str(exc), "insufficient_quota", "budget_exhausted")
    if isinstance(exc, ProviderFailed) and exc.timed_out:
        return openai_error(504, str(exc), "server_error", "provider_timeout")
    if isinstance(exc, LlmError):
        return openai_error(502, str(exc), "server_error", "provider_error")
    if isinstance(exc, ConfigError):
        return openai_error(503, f"{exc.message}: {exc}", "server_error", "config_error")
    return None


def _decision_text(result) -> str:
    decision = result.decision
    text = f"{decision.source}: {decision.reasons[-1]}" if decision.reasons else decision.source
    if result.failures:
        text += f" (after {len(result.failures)} failed: {'; '.join(result.failures)})"
    return text


def _header_text(text: str) -> str:
    """A header value: one line of ASCII, short."""
    return text.replace("→", "->").encode("ascii", "replace").decode()[:300].replace("\n", " ")
