"""Trained model versions and the training runs that produce them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ModelVersionQuerySet(models.QuerySet):
    """Lookups for the serving loader and the admin."""

    def active(self) -> ModelVersion | None:
        return self.filter(is_active=True).first()


class ModelVersion(models.Model):
    """One training run and, when it succeeded, the artifact it wrote.

    Status moves queued → running → succeeded | failed. ``is_active`` marks the one
    version served; a partial constraint makes two active versions impossible.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        TRAIN = "train", "Full training"
        REFRESH = "refresh", "Refresh"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TRAIN)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="Per-epoch loss and validation metrics.")
    progress = models.JSONField(default=dict, blank=True, help_text="Latest epoch, loss, metric and ETA.")
    data_summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    gate_reason = models.TextField(blank=True)
    gate_comparison = models.JSONField(
        default=dict,
        blank=True,
        help_text="This version and the one active when it was trained, scored on the same newest events.",
    )
    artifact_name = models.CharField(max_length=300, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=32, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="recommender_one_active_model"
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="rec_model_status_time")]

    def __str__(self) -> str:
        return self.name

    @property
    def val_ndcg(self) -> float | None:
        """Validation NDCG@10, the metric the evaluation gate compares."""
        value = self.metrics.get("val_ndcg@10")
        return float(value) if value is not None else None
