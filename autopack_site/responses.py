"""The one JSON error shape: `{"error": "<message>", "details": {"<field path>": "<message>"}}`."""

from django.http import JsonResponse

# A 503 is an outage (the database, a broken models.yaml): clients are told when to try again.
RETRY_AFTER_SECONDS = 5


def error_response(status: int, message: str, details: dict | None = None, **headers) -> JsonResponse:
    if status == 503:
        headers.setdefault("Retry_After", str(RETRY_AFTER_SECONDS))
    response = JsonResponse({"error": message, "details": details or {}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
