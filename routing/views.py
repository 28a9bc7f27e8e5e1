"""Model mapping over JSON (the original's contract) and as the dashboard's panel."""

import hashlib

from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from autopack_site import clock
from autopack_site.access import actor
from autopack_site.api import api_view, dashboard_form
from autopack_site.contract import validate_body
from autopack_site.errors import CONFIG_BROKEN, InvalidInput, NotFound
from autopack_site.queries import query_id
from autopack_site.responses import error_response
from routing.config import COMPLEXITIES, ROLES, ConfigError, config_stamp, get_config
from routing.models import ModelOverride, OverrideChange, ProviderCooldown
from routing.quotas import ADJECTIVE, forget_cached_states, provider_states
from routing.requests import OverrideReset, OverrideSet
from routing.services import model_matrix, reset_override, set_override
from runs.models import Run
from usage.aggregation import PERIODS, period_or_default
from usage.models import LlmUsageEvent

ORIGINAL_KEYS = ("role", "category", "complexity", "model", "scope")
# What mapping_context adds to a cell for the panel's markup; never part of a JSON answer.
PANEL_KEYS = ("override", "shown_model", "key", "query")


def _run_or_404(request, name: str) -> str | None:
    raw, run_id = request.GET.get(name), query_id(request, name)
    if raw and (run_id is None or not Run.objects.filter(run_id=run_id).exists()):
        raise NotFound(f"Run '{raw[:200]}' not found")
    return run_id


@api_view(methods=("GET",), write=False)
def models_json(request):
    """The original's list of mappings with our figures beside them; `?view=matrix` is the panel's shape."""
    view = request.GET.get("view") or "list"
    if view not in ("list", "matrix"):
        raise InvalidInput("Invalid query", {"view": "must be list or matrix"})
    run_id = _run_or_404(request, "run_id")
    matrix = model_matrix(run_id)
    if view == "matrix":
        return JsonResponse(matrix)
    return JsonResponse([mapping_row(cell, run_id) for cell in matrix["cells"]], safe=False)


def mapping_row(cell: dict, run_id: str | None) -> dict:
    """One row of the original's list (role, category, complexity, model, scope), then ours."""
    original = {
        "role": cell["role"],
        "category": cell["category"],
        "complexity": cell["complexity"],
        "model": _chosen(cell),
        "scope": ModelOverride.RUN if cell["source"] == "run override" else ModelOverride.GLOBAL,
    }
    ours = {k: v for k, v in cell.items() if k not in original and k not in PANEL_KEYS}
    return {**original, **ours, "run_id": run_id}


def _change_override(request, body) -> tuple[OverrideReset, str]:
    """Set (POST) or reset (DELETE) the override `body` names; the message says what happened."""
    via = "dashboard" if request.htmx else "api"
    who = actor(request, via=via)
    if request.method == "POST":
        change = validate_body(OverrideSet, body, "Invalid override")
    else:
        change = validate_body(OverrideReset, body, "Invalid override")
    keys = {k: getattr(change, k) for k in ("scope", "role", "category", "complexity")}
    keys["run_id"] = change.run_id or None
    scope = change.scope.capitalize()
    if request.method == "POST":
        set_override(**keys, model=change.model, note=change.note, changed_by=who, via=via)
        return change, f"{scope} model mapping updated"
    removed = reset_override(**keys, changed_by=who, via=via)
    return change, f"{scope} model mapping reset" if removed else f"No {change.scope} override to reset"


@dashboard_form(methods=("POST", "DELETE"))
def override_form(request):
    """A cell changed on the mapping panel: the same service as the JSON view, answered as the cell."""
    change, _ = _change_override(request, request.form)
    context = mapping_context(change.run_id or None, change.scope)
    if context["config_error"]:
        raise ConfigError("models.yaml", context["problems"])
    cell = _find_cell(context, change.role, change.category or "general", change.complexity or "medium")
    if cell is None:
        return HttpResponse(status=204)
    return render(request, "routing/mapping.html#cell", {**context, "cell": cell})


@api_view(methods=("POST", "DELETE"))
def override(request):
    change, message = _change_override(request, request.json)
    keys = change.model_dump() | {"model": getattr(change, "model", "")}
    context = mapping_context(keys["run_id"] or None, keys["scope"])
    if context["config_error"]:
        return error_response(503, CONFIG_BROKEN, dict(context["problems"]))
    wanted = (keys["role"], keys["category"] or "general", keys["complexity"] or "medium")
    cell = _find_cell(context, *wanted)
    # The original's answer (message and the keys as sent), then the cell they land in, when the file names it.
    answer = {"message": message, **{k: keys[k] for k in ORIGINAL_KEYS}}
    if cell is not None:
        ours = {k: v for k, v in mapping_row(cell, keys["run_id"] or None).items() if k not in ORIGINAL_KEYS}
        answer |= ours | {"model": keys["model"] or _chosen(cell)}
    else:
        # An override for a category the file does not name still applies; it has no cell to show.
        answer |= {"model": keys["model"] or None, "run_id": keys["run_id"] or None}
    return JsonResponse(answer)


def mapping_context(run_id: str | None, scope: str, *, version: str | None = None) -> dict:
    """Everything the mapping panel shows; a broken config gives the error instead of the matrix.

    In global scope the cells show global overrides and the YAML only: a run's overrides belong to
    the run scope, even while a run is selected.
    """
    try:
        config = get_config()
    except ConfigError as exc:
        return {"config_error": str(exc), "problems": exc.problems}
    scope = ModelOverride.RUN if scope == ModelOverride.RUN and run_id else ModelOverride.GLOBAL
    matrix = model_matrix(run_id if scope == ModelOverride.RUN else None)
    overrides = ModelOverride.objects.filter(scope=scope)
    if scope == ModelOverride.RUN:
        overrides = overrides.filter(run__run_id=run_id)
    exact = {(o.role, o.category, o.complexity): o for o in overrides}
    grouped: dict[str, list] = {}
    for name, info in sorted(config.models.items(), key=lambda item: (item[1].provider, item[0])):
        grouped.setdefault(info.provider, []).append(name)
    where = {"scope": scope, "run": run_id} if scope == ModelOverride.RUN else {"scope": scope}
    rows: dict[str, dict[str, list]] = {role: {} for role in ROLES}
    for cell in matrix["cells"]:
        cell["override"] = exact.get((cell["role"], cell["category"], cell["complexity"]))
        cell["shown_model"] = _chosen(cell)
        cell["key"] = f"{cell['role']}-{cell['category']}-{cell['complexity']}"
        cell["query"] = urlencode(where | {k: cell[k] for k in ("role", "category", "complexity")})
        rows[cell["role"]].setdefault(cell["category"], []).append(cell)
    tables = [
        {
            "role": role,
            "rows": [
                {
                    "category": c,
                    # Shown with a line break allowed after each underscore, so a narrow column never splits a word.
                    "category_parts": c.split("_"),
                    "description": config.routing.category_descriptions.get(c, ""),
                    "cells": cells,
                }
                for c, cells in by_category.items()
            ],
        }
        for role, by_category in rows.items()
    ]
    states = provider_states(config)
    now = clock.now()
    return {
        "config_error": None,
        "scope": scope,
        "run_id": run_id,
        "roles": ROLES,
        "complexities": COMPLEXITIES,
        "tables": tables,
        "models_by_provider": grouped,
        "strip": [_strip_entry(state, now) for _, state in sorted(states.items())],
        "changes": list(OverrideChange.objects.all()[:8]),
        "cells": matrix["cells"],
        "mapping_version": version or mapping_version(),
    }


def _chosen(cell) -> str | None:
    """The model the mapping names for the cell (an override or the YAML), before quotas have their say."""
    return cell.get("effective_model") if cell.get("source") not in (None, "yaml") else cell.get("baseline_model")


def _find_cell(context: dict, role: str, category: str, complexity: str) -> dict | None:
    wanted = (role, category, complexity)
    return next((c for c in context["cells"] if (c["role"], c["category"], c["complexity"]) == wanted), None)


def _strip_entry(state, now) -> dict:
    """A provider as routing sees it: its share of the cap in each window, and what routing does about it.

    The text for every window is ready so the strip can name the window the usage panel shows.
    """
    by_window = {}
    for period in PERIODS:
        window = next((w for w in state.windows if w.window == period), None)
        if window is None:
            by_window[period] = {"text": f"no {ADJECTIVE[period]} cap", "detail": "routing does not watch this window"}
        else:
            share = "under 1%" if 0 < window.share < 0.005 else f"{window.share:.0%}"
            by_window[period] = {
                "text": f"{share} of its {ADJECTIVE[window.window]} cap",
                "detail": state.describe(window),
            }
    if state.is_cooling(now):
        status, note = "cooling", f"cooling down until {state.cooldown_until:%H:%M:%S} UTC ({state.cooldown_reason})"
    elif window := state.exhausted_window:
        status, note = "exhausted", f"exhausted its {ADJECTIVE[window.window]} cap"
    elif window := state.soft_window:
        status, note = "soft", f"over its {ADJECTIVE[window.window]} soft limit ({state.soft_limit_ratio:.0%})"
    else:
        status, note = "under", ""
    return {"provider": state.provider, "status": status, "note": note, "by_window": by_window}


def _panel_context(request, *, version: str | None = None) -> dict:
    period, _ = period_or_default(request.GET.get("period"))
    context = mapping_context(query_id(request, "run"), request.GET.get("scope", "global"), version=version)
    return {**context, "period": period}


# A rendered panel is kept under its version, which moves with everything the panel shows: every
# tab that opens it between two changes gets the same bytes without rendering 36 cells again.
PANEL_SECONDS = 120


@require_GET
def mapping_panel(request):
    period, _ = period_or_default(request.GET.get("period"))
    version = mapping_version()
    asked = f"{request.GET.get('scope', 'global')}|{query_id(request, 'run')}|{period}|{version}"
    key = "mapping-panel:" + hashlib.sha256(asked.encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        # What is kept must not show quota reads cached before this version.
        forget_cached_states()
        html = render_to_string("routing/mapping.html#panel", _panel_context(request, version=version), request)
        cache.set(key, html, PANEL_SECONDS)
    return HttpResponse(html)


def mapping_version() -> str:
    """Changes whenever the strip or a badge may have: an override or a cooldown changed, a call was
    recorded (quotas move), models.yaml changed, or a minute passed (windows roll, cooldowns end).

    One query.
    """
    changes, cooldowns, events = (m._meta.db_table for m in (OverrideChange, ProviderCooldown, LlmUsageEvent))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT max(id) FROM {changes}), (SELECT count(*) FROM {cooldowns}), "  # noqa: S608
            f"(SELECT max(updated_at) FROM {cooldowns}), (SELECT max(id) FROM {events})"
        )
        row = cursor.fetchone()
    stamp = "-".join(str(value) for value in row).replace(" ", "T")
    return f"{stamp}.{config_stamp()}.{int(clock.now().timestamp()) // 60}"


@require_GET
def mapping_status(request):
    """The poll: the provider strip and each cell's badges, out of band; never a cell's form or buttons.

    An empty 204 from one query while nothing they show can have changed since `v`.
    """
    period, _ = period_or_default(request.GET.get("period"))
    version = mapping_version()
    if request.GET.get("v") == f"{period}:{version}":
        return HttpResponse(status=204)
    # The answer stands until the version moves again: it must not show quota reads cached before it.
    forget_cached_states()
    context = _panel_context(request, version=version)
    if context["config_error"]:
        return HttpResponse(status=204)
    return render(request, "routing/mapping.html#status", {**context, "oob": True})


@require_GET
def mapping_cell(request):
    """One cell: with `edit`, its form and the catalog's models, fetched when a person starts a change."""
    context = _panel_context(request)
    if context["config_error"]:
        return error_response(503, CONFIG_BROKEN, dict(context["problems"]))
    keys = [request.GET.get(k, "") for k in ("role", "category", "complexity")]
    cell = _find_cell(context, *keys)
    if cell is None:
        raise Http404("No such cell")
    return render(request, "routing/mapping.html#cell", {**context, "cell": cell, "editing": "edit" in request.GET})


@require_GET
def mapping_page(request):
    return render(request, "routing/mapping.html", _panel_context(request))
