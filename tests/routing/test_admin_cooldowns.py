import datetime as dt

import pytest

from autopack_site import clock
from routing.models import ProviderCooldown
from routing.router import select
from routing.services import put_in_cooldown

pytestmark = pytest.mark.django_db


def admin_time(moment: dt.datetime) -> dict:
    local = moment.astimezone(dt.UTC)
    return {"until_0": local.strftime("%Y-%m-%d"), "until_1": local.strftime("%H:%M:%S")}


def test_a_cooldown_added_in_the_admin_routes_around_the_provider_at_once(admin_client, routing):
    # This process has just read the provider states, and caches them for a few seconds.
    assert select("builder", None, "medium").provider == "openai"

    response = admin_client.post(
        "/admin/routing/providercooldown/add/",
        {"provider": "openai", "reason": "Planned maintenance", **admin_time(clock.now() + dt.timedelta(hours=1))},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    decision = select("builder", None, "medium")
    assert decision.provider == "google" and "cooling down" in decision.reasons[-1]
    cooldown = ProviderCooldown.objects.get()
    assert (cooldown.reason, cooldown.failures) == ("Planned maintenance", 0)


def test_a_cooldown_ended_in_the_admin_frees_the_provider_at_once(admin_client, routing):
    put_in_cooldown(provider="openai", reason="HTTP 429", retry_after=600)
    assert select("builder", None, "medium").provider == "google"
    pk = ProviderCooldown.objects.get().pk

    response = admin_client.post(f"/admin/routing/providercooldown/{pk}/delete/", {"post": "yes"})

    assert response.status_code == 302 and not ProviderCooldown.objects.exists()
    assert select("builder", None, "medium").provider == "openai"


def test_a_cooldown_shortened_in_the_admin_frees_the_provider_at_once(admin_client, routing):
    put_in_cooldown(provider="openai", reason="HTTP 429", retry_after=600)
    assert select("builder", None, "medium").provider == "google"
    cooldown = ProviderCooldown.objects.get()

    response = admin_client.post(
        f"/admin/routing/providercooldown/{cooldown.pk}/change/",
        {"reason": "Fixed upstream", **admin_time(clock.now() - dt.timedelta(seconds=1))},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert select("builder", None, "medium").provider == "openai"
    # The failures that led to it are kept: the next failure backs off from them.
    assert ProviderCooldown.objects.get().failures == cooldown.failures


def test_a_cooldown_for_an_unknown_provider_is_refused(admin_client, routing):
    response = admin_client.post(
        "/admin/routing/providercooldown/add/",
        {"provider": "opneai", "reason": "typo", **admin_time(clock.now() + dt.timedelta(hours=1))},
    )
    assert response.status_code == 200 and "Unknown provider" in response.content.decode()
    assert not ProviderCooldown.objects.exists()
