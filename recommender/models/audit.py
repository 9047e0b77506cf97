"""Who looked at whose reading history: staff access to personal data, kept for review."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class HistoryAccess(models.Model):
    """One look by staff at a reader's history (the tuning preview shows it); never edited."""

    viewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject_label = models.CharField(max_length=150, help_text="The reader's username when looked at.")
    viewed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    where = models.CharField(max_length=64, help_text="The page that showed the history.")

    class Meta:
        ordering = ["-viewed_at"]
        verbose_name_plural = "history accesses"

    def __str__(self) -> str:
        return f"{self.viewed_by} viewed {self.subject_label}'s history at {self.viewed_at:%Y-%m-%d %H:%M}"
