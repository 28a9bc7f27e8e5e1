"""The usage panel: per-provider cards against their caps, top models, runs and phases, a 30-day chart."""

import csv
import datetime as dt
import hashlib

from django.core.cache import cache
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from runs.models import Run
from usage.aggregation import (
    PERIODS,
    daily_tokens_by_provider,
    demo_summary,
    period_or_default,
    raw_window_filter,
    top_runs_and_phases,
    usage_by_sender,
    usage_summary,
    usage_version,
)
from usage.events import REPORTED_FIELDS
from usage.models import LlmUsageEvent

CHART_WIDTH, CHART_HEIGHT = 300, 100
CSV_COLUMNS = ("created_at", *REPORTED_FIELDS, "cost_usd", "is_demo")


def usage_chart(days: int = 30) -> dict:
    """Polylines of tokens per day per provider, scaled into the SVG's viewBox."""
    dates, series = daily_tokens_by_provider(days=days)
    peak = max((max(values) for values in series.values()), default=0)
    step = CHART_WIDTH / max(1, days - 1)
    lines = []
    for index, (provider, values) in enumerate(series.items()):
        points = " ".join(
            f"{i * step:.1f},{CHART_HEIGHT - (v / peak * CHART_HEIGHT if peak else 0):.1f}"
            for i, v in enumerate(values)
        )
        lines.append({"provider": provider, "points": points, "colour": index % 6, "total": sum(values)})
    return {
        "lines": lines,
        "peak": peak,
        "first": dates[0],
        "last": dates[-1],
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
    }


def usage_context(period: str, *, version: str | None = None) -> dict:
    summary = usage_summary(period)
    for row in summary["providers"]:
        row["forecast_at"] = dt.datetime.fromisoformat(row["forecast"]) if row["forecast"] else None
    top = top_runs_and_phases(period)
    links = _run_links({row["run_id"] for row in (*top["runs"], *top["phases"])})
    for row in (*top["runs"], *top["phases"]):
        row["url"], row["is_demo"] = links.get(row["run_id"], (None, False))
    return {
        "period": period,
        "periods": tuple(PERIODS),
        "summary": summary,
        "top_models": summary["models"][:5],
        "top_runs": top["runs"],
        "top_phases": top["phases"],
        "by_sender": usage_by_sender(period),
        "chart": usage_chart(),
        "usage_version": version or usage_version(),
        "demo": demo_summary(),
    }


def _run_links(run_ids: set[str]) -> dict[str, tuple[str | None, bool]]:
    """(page, is demo) of the runs that exist; usage may name runs never started, which stay plain text."""
    links = {}
    for run_id, is_demo in Run.objects.filter(run_id__in=run_ids).values_list("run_id", "is_demo"):
        try:
            links[run_id] = (reverse("run-page", args=[run_id]), is_demo)
        except NoReverseMatch:
            links[run_id] = (None, is_demo)
    return links


@require_GET
def usage_page(request):
    period, notice = period_or_default(request.GET.get("period"))
    return render(request, "usage/usage.html", {**usage_context(period), "notice": notice})


# A rendered panel is kept under its version, which moves with every recorded call, models.yaml and
# the minute: every tab that asks between two changes gets the same bytes from one query.
PANEL_SECONDS = 120


@require_GET
def usage_panel(request):
    """The panel again, or an empty 204 (one query) when nothing it shows can have changed since `v`."""
    period, notice = period_or_default(request.GET.get("period"))
    version = usage_version()
    if request.GET.get("v") == version:
        return HttpResponse(status=204)
    key = "usage-panel:" + hashlib.sha256(f"{period}|{notice}|{version}".encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        context = {**usage_context(period, version=version), "notice": notice}
        html = render_to_string("usage/usage.html#panel", context, request)
        cache.set(key, html, PANEL_SECONDS)
    return HttpResponse(html)


class _Echo:
    def write(self, value):
        return value


# Spreadsheets run a cell that starts with one of these as a formula (OWASP's CSV injection rule).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A cell a spreadsheet shows as text: a leading ' before anything it would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@require_GET
def usage_csv(request):
    """The window's raw events as CSV, streamed: rows leave as they are read, never all in memory."""
    period, _ = period_or_default(request.GET.get("period"))
    writer = csv.writer(_Echo())
    rows = (
        LlmUsageEvent.objects.filter(raw_window_filter(period))
        .order_by("created_at", "id")
        .values_list(*CSV_COLUMNS)
        .iterator(chunk_size=5000)
    )

    def lines():
        yield writer.writerow(CSV_COLUMNS)
        for row in rows:
            yield writer.writerow((row[0].isoformat(), *map(csv_safe, row[1:])))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="autopack-usage-{period}.csv"'
    return response
