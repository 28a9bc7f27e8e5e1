"""Model mapping over JSON (the original's contract) and as the dashboard's panel."""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from autopack_site import clock
from autopack_site.api import CONFIG_BROKEN, api_view, error_response, query_id
from autopack_site.errors import InvalidInput, NotFound
from routing.config import COMPLEXITIES, ROLES, ConfigError, get_config
from routing.models import ModelOverride, OverrideChange
from routing.quotas import provider_states
from routing.services import model_matrix, reset_override, set_override
from runs.models import Run


def _run_or_404(request, name: str) -> str | None:
    raw, run_id = request.GET.get(name), query_id(request, name)
    if raw and (run_id is None or not Run.objects.filter(run_id=run_id).exists()):
        raise NotFound(f"Run '{raw[:200]}' not found")
    return run_id


@api_view(methods=("GET",), write=False)
def models_json(request):
    return JsonResponse(model_matrix(_run_or_404(request, "run_id")))


def _override_keys(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("Invalid override", {"body": "must be a JSON object"})
    keys = {}
    for key in ("role", "category", "complexity", "scope", "run_id", "model", "note"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput("Invalid override", {key: "must be a string"})
        keys[key] = value or ""
    keys["scope"] = keys["scope"] or ModelOverride.GLOBAL
    return keys


@api_view(methods=("POST", "DELETE"), dashboard=True)
def override(request):
    keys = _override_keys(request.json)
    via = "dashboard" if request.htmx else "api"
    who = request.user.get_username() if request.user.is_authenticated else via
    common = {k: keys[k] for k in ("scope", "role", "category", "complexity")} | {"run_id": keys["run_id"] or None}
    if request.method == "POST":
        if not keys["model"]:
            raise InvalidInput("Invalid override", {"model": "is required"})
        set_override(**common, model=keys["model"], note=keys["note"], changed_by=who, via=via)
    else:
        reset_override(**common, changed_by=who, via=via)
    context = mapping_context(keys["run_id"] or None, keys["scope"])
    if context["config_error"]:
        return error_response(503, CONFIG_BROKEN, dict(context["problems"]))
    wanted = (keys["role"], keys["category"] or "general", keys["complexity"] or "medium")
    cell = next((c for c in context["cells"] if (c["role"], c["category"], c["complexity"]) == wanted), None)
    if request.htmx and cell is not None:
        return render(request, "routing/mapping.html#cell", {**context, "cell": cell})
    if cell is None:
        # An override for a category the file does not name still applies; it has no cell to show.
        return JsonResponse({"role": keys["role"], "category": keys["category"], "complexity": keys["complexity"]})
    shown = {k: v for k, v in cell.items() if k not in ("override", "key", "shown_model")}
    return JsonResponse({**shown, "run_id": keys["run_id"] or None})


def mapping_context(run_id: str | None, scope: str) -> dict:
    """Everything the mapping panel shows; a broken config gives the error instead of the matrix."""
    try:
        config = get_config()
    except ConfigError as exc:
        return {"config_error": str(exc), "problems": exc.problems}
    scope = ModelOverride.RUN if scope == ModelOverride.RUN and run_id else ModelOverride.GLOBAL
    matrix = model_matrix(run_id)
    overrides = ModelOverride.objects.filter(scope=scope)
    if scope == ModelOverride.RUN:
        overrides = overrides.filter(run__run_id=run_id)
    exact = {(o.role, o.category, o.complexity): o for o in overrides}
    grouped: dict[str, list] = {}
    for name, info in sorted(config.models.items(), key=lambda item: (item[1].provider, item[0])):
        grouped.setdefault(info.provider, []).append(name)
    rows: dict[str, dict[str, list]] = {role: {} for role in ROLES}
    for cell in matrix["cells"]:
        cell["override"] = exact.get((cell["role"], cell["category"], cell["complexity"]))
        cell["shown_model"] = cell["override"].model if cell["override"] else _inherited(cell)
        cell["key"] = f"{cell['role']}-{cell['category']}-{cell['complexity']}"
        rows[cell["role"]].setdefault(cell["category"], []).append(cell)
    tables = [
        {
            "role": role,
            "rows": [
                {"category": c, "description": config.routing.category_descriptions.get(c, ""), "cells": cells}
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
    }


def _inherited(cell) -> str:
    """What the cell runs when this scope has no override of its own: an override below, or the YAML."""
    return cell.get("effective_model") if cell.get("source") not in (None, "yaml") else cell.get("baseline_model")


def _strip_entry(state, now) -> dict:
    if state.is_cooling(now):
        return {
            "provider": state.provider,
            "status": "cooling",
            "text": f"cooling down until {state.cooldown_until:%H:%M:%S} UTC",
            "reason": state.cooldown_reason,
        }
    if window := state.exhausted_window:
        return {
            "provider": state.provider,
            "status": "exhausted",
            "text": "exhausted",
            "reason": state.describe(window),
        }
    if window := state.soft_window:
        return {
            "provider": state.provider,
            "status": "soft",
            "text": "over soft limit",
            "reason": state.describe(window),
        }
    tight = max(state.windows, key=lambda w: w.share, default=None)
    return {
        "provider": state.provider,
        "status": "under",
        "text": "under",
        "reason": state.describe(tight) if tight else "no cap configured",
    }


@require_GET
def mapping_panel(request):
    context = mapping_context(query_id(request, "run"), request.GET.get("scope", "global"))
    return render(request, "routing/mapping.html#panel", context)


@require_GET
def mapping_status(request):
    """The poll: the provider strip and each cell's badge, out of band; never the dropdowns."""
    context = mapping_context(query_id(request, "run"), request.GET.get("scope", "global"))
    if context["config_error"]:
        return HttpResponse(status=204)
    return render(request, "routing/mapping.html#status", {**context, "oob": True})


@require_GET
def mapping_page(request):
    context = mapping_context(query_id(request, "run"), request.GET.get("scope", "global"))
    return render(request, "routing/mapping.html", context)
