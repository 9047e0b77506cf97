"""Run-time tuning edited in the admin, layered over ``RECOMMENDER`` settings."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TuningSettings(models.Model):
    """A single row of overrides; a key absent from ``values`` falls back to settings."""

    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "tuning"
        verbose_name_plural = "tuning"

    def __str__(self) -> str:
        return "Recommender tuning"


class TuningChange(models.Model):
    """Audit trail: who changed which tuning values, when, from what to what."""

    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"tuning change {self.changed_at:%Y-%m-%d %H:%M}"
