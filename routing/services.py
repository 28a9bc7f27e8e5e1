"""Every change to overrides and cooldowns, and the mapping matrix the dashboard and API read."""

import datetime as dt

from django.db import IntegrityError, transaction

from alerts.models import Alert
from alerts.services import raise_alert
from autopack_site import clock
from autopack_site.errors import InvalidInput, NotFound
from notes.services import rewrite_file_on_commit as rewrite_notes_file_on_commit
from routing.config import COMPLEXITIES, ROLES, get_config
from routing.models import ModelOverride, OverrideChange, ProviderCooldown
from routing.quotas import forget_cached_states, provider_states
from routing.router import RoutingError, baseline, forget_cached_overrides, load_overrides, select
from runs import services as runs_services
from runs.models import Run

COOLDOWN_BASE_SECONDS = 15
COOLDOWN_MAX_SECONDS = 15 * 60


def _check_keys(*, scope: str, run_id: str | None, role: str, category: str, complexity: str) -> Run | None:
    errors = {}
    if scope not in (ModelOverride.GLOBAL, ModelOverride.RUN):
        errors["scope"] = "must be global or run"
    if role not in ROLES:
        errors["role"] = f"must be one of: {', '.join(ROLES)}"
    if complexity not in ("", *COMPLEXITIES):
        errors["complexity"] = f"must be one of: {', '.join(COMPLEXITIES)} (or empty for any)"
    if len(category) > 100:
        errors["category"] = "may be at most 100 characters"
    if scope == ModelOverride.RUN and not run_id:
        errors["run_id"] = "is required for a run override"
    if scope == ModelOverride.GLOBAL and run_id:
        errors["run_id"] = "goes only with scope run; a global override applies to every run"
    if errors:
        raise InvalidInput("Invalid override", errors)
    if scope != ModelOverride.RUN:
        return None
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    return run


@transaction.atomic
def set_override(
    *,
    scope: str,
    role: str,
    category: str,
    complexity: str,
    model: str,
    run_id: str | None = None,
    note: str = "",
    changed_by: str = "",
    via: str,
) -> ModelOverride:
    """Create or change an override, and log the change. The YAML file is never written."""
    run = _check_keys(scope=scope, run_id=run_id, role=role, category=category, complexity=complexity)
    if get_config().model(model) is None:
        raise InvalidInput("Invalid override", {"model": f"unknown model {model!r}: not in the catalog"})
    now = clock.now()
    cell = {"scope": scope, "run": run, "role": role, "category": category, "complexity": complexity}
    changes = {"model": model, "note": note, "changed_by": changed_by, "updated_at": now}
    # Lock the matching row: two people may set the same cell at once.
    existing = ModelOverride.objects.select_for_update().filter(**cell).first()
    if existing is None:
        try:
            # A savepoint: when another person creates the same cell first, its row is there to change.
            with transaction.atomic():
                created = ModelOverride.objects.create(**cell, **changes, created_at=now)
        except IntegrityError:
            existing = ModelOverride.objects.select_for_update().get(**cell)
        else:
            _log("set", created, run_id, "", model, changed_by, via, now)
            return created
    old_model = existing.model
    for name, value in changes.items():
        setattr(existing, name, value)
    existing.save()
    _log("set", existing, run_id, old_model, model, changed_by, via, now)
    return existing


@transaction.atomic
def reset_override(
    *, scope: str, role: str, category: str, complexity: str, run_id: str | None = None, changed_by: str = "", via: str
) -> bool:
    """Remove an override (the YAML's choice applies again); False when there was none."""
    # A broken file would leave nothing to fall back to: refuse before changing anything.
    get_config()
    run = _check_keys(scope=scope, run_id=run_id, role=role, category=category, complexity=complexity)
    existing = (
        ModelOverride.objects.select_for_update()
        .filter(scope=scope, run=run, role=role, category=category, complexity=complexity)
        .first()
    )
    if existing is None:
        return False
    existing.delete()
    _log("reset", existing, run_id, existing.model, "", changed_by, via, clock.now())
    return True


@transaction.atomic
def delete_run(*, run_id: str, deleted_by: str = "", via: str) -> None:
    """Delete a run after resetting each of its overrides, so the override log records every one.

    Its notes go with it (the database cascades them), and the notes file is rewritten once committed.
    """
    # Lock the run first: an override being set for it now either committed before (and is reset
    # here) or waits for this transaction and then fails for want of its run; none goes unlogged.
    run = Run.objects.select_for_update().filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    reset_run_overrides(run_ids=[run_id], changed_by=deleted_by, via=via)
    had_notes = run.notes.exists()
    runs_services.delete_run(run_id=run_id)
    if had_notes:
        rewrite_notes_file_on_commit()


def reset_run_overrides(*, run_ids: list[str], changed_by: str, via: str) -> None:
    """Reset every override of these runs, each logged, before the runs go."""
    for override in ModelOverride.objects.filter(run__run_id__in=run_ids).select_related("run").order_by("id"):
        reset_override(
            scope=override.scope,
            role=override.role,
            category=override.category,
            complexity=override.complexity,
            run_id=override.run.run_id,
            changed_by=changed_by,
            via=via,
        )


def _log(action, override, run_id, old_model, new_model, changed_by, via, now) -> None:
    # Every change passes here: this process's next routed call must see it, now and once committed
    # (a read between the two would cache what was there before).
    forget_cached_overrides()
    transaction.on_commit(forget_cached_overrides)
    OverrideChange.objects.create(
        action=action,
        scope=override.scope,
        run_id=run_id or "",
        role=override.role,
        category=override.category,
        complexity=override.complexity,
        old_model=old_model,
        new_model=new_model,
        changed_by=changed_by,
        via=via,
        created_at=now,
    )


@transaction.atomic
def put_in_cooldown(*, provider: str, reason: str, retry_after: float | None = None) -> ProviderCooldown:
    """Keep every worker off a provider for a while: Retry-After when given, else exponential."""
    now = clock.now()
    row = ProviderCooldown.objects.select_for_update().filter(provider=provider).first()
    is_new = row is None or row.until <= now
    recent = row is not None and row.until > now - dt.timedelta(seconds=COOLDOWN_MAX_SECONDS)
    failures = row.failures + 1 if recent else 1
    seconds = retry_after if retry_after is not None else COOLDOWN_BASE_SECONDS * 2 ** (failures - 1)
    seconds = min(max(seconds, 1), COOLDOWN_MAX_SECONDS)
    row, _ = ProviderCooldown.objects.update_or_create(
        provider=provider,
        defaults={
            "until": now + dt.timedelta(seconds=seconds),
            "reason": reason[:300],
            "failures": failures,
            "updated_at": now,
        },
    )
    forget_cached_states()
    if is_new:
        # One alert per cooldown, not per failure that lengthens it. Two workers putting the provider in
        # cooldown in the same minute raise it once.
        raise_alert(
            kind=Alert.Kind.COOLDOWN,
            subject=provider,
            threshold=0,
            window_start=now.replace(second=0, microsecond=0),
            message=f"{provider} is in cooldown for {seconds:g} s: {reason[:300]}",
            provider=provider,
        )
    return row


@transaction.atomic
def set_cooldown(*, provider: str, until: dt.datetime, reason: str) -> ProviderCooldown:
    """Keep every worker off a provider until `until`, as a person decided; its failure count is kept."""
    if not provider or len(provider) > 50:
        raise InvalidInput("Invalid cooldown", {"provider": "must be 1 to 50 characters"})
    changes = {"until": until, "reason": reason[:300], "updated_at": clock.now()}
    # A new row starts with no failures: no failure started it, so the next real one counts as the first.
    row, _ = ProviderCooldown.objects.update_or_create(
        provider=provider, defaults=changes, create_defaults={**changes, "failures": 0}
    )
    forget_cached_states()
    return row


@transaction.atomic
def end_cooldown(*, provider: str) -> bool:
    """Make a provider available again at once, forgetting its failures; False when it had no cooldown."""
    deleted, _ = ProviderCooldown.objects.filter(provider=provider).delete()
    forget_cached_states()
    return bool(deleted)


def model_matrix(run_id: str | None = None) -> dict:
    """Every (role, category, complexity) cell: the YAML's model, the effective one now, and why."""
    config = get_config()
    run_overrides, global_overrides = load_overrides(run_id)
    states = provider_states(config)
    cells = []
    for role in ROLES:
        for category in config.routing.categories():
            for complexity in COMPLEXITIES:
                cell = {"role": role, "category": category, "complexity": complexity}
                try:
                    cell["baseline_model"] = baseline(config, role, category, complexity)[0]
                    decision = select(
                        role,
                        category,
                        complexity,
                        config=config,
                        overrides=(run_overrides, global_overrides),
                        states=states,
                    )
                except RoutingError as exc:
                    cell.update(effective_model=None, source=None, reasons=[], warnings=[], error=str(exc))
                else:
                    cell.update(
                        effective_model=decision.model,
                        provider=decision.provider,
                        source=decision.source,
                        reasons=decision.reasons,
                        warnings=decision.warnings,
                        redirected=decision.is_redirected,
                        error=None,
                    )
                cells.append(cell)
    return {"run_id": run_id, "cells": cells}
