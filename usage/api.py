"""Usage over HTTP: ingest for executors on other machines, and the aggregation endpoint."""

from django.http import JsonResponse

from autopack_site.api import api_view
from autopack_site.errors import InvalidInput
from usage.aggregation import parse_period, usage_summary
from usage.recording import record_usage_events

MAX_EVENTS = 10_000
MAX_BODY = 8 * 1024 * 1024


@api_view(methods=("POST",), max_body=MAX_BODY)
def ingest(request):
    body = request.json
    if isinstance(body, dict) and "events" in body:
        events = body["events"]
        if not isinstance(events, list):
            raise InvalidInput("Invalid usage events", {"events": "must be a list"})
        if len(events) > MAX_EVENTS:
            raise InvalidInput("Too many events", {"events": f"at most {MAX_EVENTS} per request"})
        if not events:
            raise InvalidInput("Invalid usage events", {"events": "is empty"})
    else:
        events = [body]
    result = record_usage_events(events, atomic_batch=True)
    return JsonResponse(
        {"imported": result.imported, "duplicates": result.duplicates, "rejected": len(result.rejected)},
        status=201 if result.imported else 200,
    )


@api_view(methods=("GET",), write=False)
def usage(request):
    return JsonResponse(usage_summary(parse_period(request.GET.get("period"))))
