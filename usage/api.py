"""Usage over HTTP: ingest for executors on other machines, and the aggregation endpoint."""

from django.http import JsonResponse

from autopack_site.access import actor
from autopack_site.api import api_view
from usage.aggregation import parse_period, usage_summary
from usage.recording import record_usage_events
from usage.requests import parse_ingest

MAX_BODY = 8 * 1024 * 1024


@api_view(methods=("POST",), max_body=MAX_BODY)
def ingest(request):
    result = record_usage_events(parse_ingest(request.json), atomic_batch=True, sent_by=actor(request, via=""))
    return JsonResponse(
        {"imported": result.imported, "duplicates": result.duplicates, "rejected": len(result.rejected)},
        status=201 if result.imported else 200,
    )


@api_view(methods=("GET",), write=False)
def usage(request):
    return JsonResponse(usage_summary(parse_period(request.GET.get("period"))))
