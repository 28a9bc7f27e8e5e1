"""Creating, checking and revoking named API keys."""

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.db import transaction

from apikeys.models import ApiKey
from autopack_site import clock
from autopack_site.errors import Conflict, InvalidInput, NotFound

SECRET_START = "apk_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = len(SECRET_START) + 8
USE_RECORDED_EVERY = dt.timedelta(minutes=1)
NAME_TAKEN = "An API key with this name exists already"
NAME_NEEDED = "An API key needs a name"


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    # The only time the secret exists outside its holder's hands: show it once, store it nowhere.
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def create_api_key(*, name: str) -> CreatedKey:
    """A new key named `name`, with its secret (returned once, stored only as a digest)."""
    name = name.strip()
    if not name:
        raise InvalidInput(NAME_NEEDED, {"name": "required"})
    if len(name) > ApiKey._meta.get_field("name").max_length:
        raise InvalidInput("API key name is too long", {"name": "at most 100 characters"})
    if ApiKey.objects.filter(name=name).exists():
        raise Conflict(NAME_TAKEN, {"name": "already exists"})
    secret = SECRET_START + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name, prefix=secret[:PREFIX_LENGTH], secret_digest=digest(secret), created_at=clock.now()
    )
    return CreatedKey(key=key, secret=secret)


@transaction.atomic
def revoke_api_key(*, key_id: int) -> ApiKey:
    """Revoke the key: from now on it is refused. Revoking a revoked key keeps its first revocation time."""
    key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
    if key is None:
        raise NotFound(f"No API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
    return key


def key_for_secret(secret: str) -> ApiKey | None:
    """The live key this secret belongs to, or None (unknown, or revoked); notes when it was used."""
    key = ApiKey.objects.filter(prefix=secret[:PREFIX_LENGTH], revoked_at__isnull=True).first()
    # The digests are compared in constant time: the lookup by prefix tells nothing about the rest.
    if key is None or not hmac.compare_digest(key.secret_digest, digest(secret)):
        return None
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at >= USE_RECORDED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def any_live_key() -> bool:
    return ApiKey.objects.filter(revoked_at__isnull=True).exists()
