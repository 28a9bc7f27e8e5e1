"""What `/metrics` counts, as prometheus-client metrics, and the one call each counting place makes.

Under gunicorn each worker is a process of its own: with PROMETHEUS_MULTIPROC_DIR set (start.sh and
`make run` set it for gunicorn and the task worker beside it), prometheus-client keeps every process's
figures in files there, and a scrape adds them up, whichever worker answers it. Without it (tests,
`runserver`) the figures are this process's. State that lives in the database (providers cooling down,
open alerts) is not counted here: `/metrics` reads it at scrape time, the same on every server.
"""

from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "autopack_http_request_duration_seconds",
    "Time from a request's arrival to its response's start, by route name, method and status.",
    ["view", "method", "status"],
    # An unchanged poll takes about a millisecond; the gateway's calls wait on a provider for seconds.
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DATABASE_ERRORS = Counter(
    "autopack_database_errors",
    "Requests that failed because the database was unreachable or dropped the connection, by error.",
    ["error"],
)
USAGE_EVENTS_RECORDED = Counter(
    "autopack_usage_events_recorded",
    "LLM usage events stored (duplicates of a stored request_id are not stored, so not counted).",
)
ALERTS_RAISED = Counter("autopack_alerts_raised", "Alerts raised, by kind.", ["kind"])


def count_request(*, view: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(view, method, status).observe(seconds)


def count_database_error(error: str) -> None:
    DATABASE_ERRORS.labels(error).inc()


def count_usage_events(count: int) -> None:
    USAGE_EVENTS_RECORDED.inc(count)


def count_alert(kind: str) -> None:
    ALERTS_RAISED.labels(kind).inc()
