"""Intervention notes from the person watching a run, kept until an agent has read them."""

from django.db import models


class HumanNote(models.Model):
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField()
    author = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField()
    # Moved by every change the notes list shows (added, edited, delivered): the list's poll version.
    changed_at = models.DateTimeField()
    # Set when a Builder or Auditor prompt carried the note; `delivered_to` names that call.
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_to = models.CharField(max_length=300, blank=True, default="")
    # Whether the append to AUTOPACK_NOTES_FILE succeeded, and why not.
    file_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["delivered_at", "run"], name="note_undelivered_idx")]

    def __str__(self):
        return self.text[:60]

    @property
    def is_delivered(self) -> bool:
        return self.delivered_at is not None
