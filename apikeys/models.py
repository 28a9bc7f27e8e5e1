"""Named API keys for executors and agents: only a digest of each secret is stored."""

from django.db import models


class ApiKey(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # The secret's first characters, stored in clear: how a presented secret finds its row, and how
    # the admin tells keys apart. The rest of the secret is known only to whoever holds it.
    prefix = models.CharField(max_length=16, unique=True)
    # SHA-256 of the whole secret: the secret is random, so a slow password hash would add nothing.
    secret_digest = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    # Moved at most once a minute (USE_RECORDED_EVERY), so a busy executor does not write on every call.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self):
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
