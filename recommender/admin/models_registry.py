"""The model registry: versions with metrics and curves; train, refresh, activate and roll back buttons.

Every button is a POST to a view of this admin (CSRF-protected by ``admin_view``)
that needs ``recommender.change_modelversion``; the running job's progress is
a small JSON view the page polls.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from recommender.admin import actions, display
from recommender.admin.charts import Series, line_chart
from recommender.models import ModelVersion
from recommender.training import model_registry

IN_FLIGHT = (ModelVersion.Status.QUEUED, ModelVersion.Status.RUNNING)


def training_curves(history: list[dict[str, Any]]) -> dict[str, str]:
    """SVG charts of a run's per-epoch history: the loss, and the validation ranking metrics."""
    epochs = ["refit" if row.get("refit") else str(row.get("epoch", n + 1)) for n, row in enumerate(history)]
    # Ranking metrics share a 0-1 scale; coverage and timings would flatten them.
    metric_keys = sorted({k for row in history for k in row if k.startswith("val_") and "coverage" not in k})
    loss_keys = sorted({k for row in history for k in row if "loss" in k})

    def series(keys: list[str]) -> list[Series]:
        return [Series(k, [_number(row.get(k)) for row in history]) for k in keys]

    return {
        "loss_chart": line_chart("Training loss per epoch", epochs, series(loss_keys)),
        "metric_chart": line_chart("Validation metrics per epoch", epochs, series(metric_keys)),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# What the keys of ``ModelVersion.data_summary`` mean, in the order the page lists them.
DATA_SUMMARY_LABELS = {
    "users": "training sequences (one per reader)",
    "events": "events in those sequences",
    "items": "items the model knows",
    "epochs_run": "epochs run",
    "seconds": "training time, seconds",
    "last_interaction_id": "trained on interactions up to id",
}


def data_summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The training-data table: known keys in words and in order, then any others as stored."""
    known = [(label, summary[key]) for key, label in DATA_SUMMARY_LABELS.items() if key in summary]
    others = sorted((key, value) for key, value in summary.items() if key not in DATA_SUMMARY_LABELS)
    return [(label, display.number(value)) for label, value in [*known, *others]]


def data_summary_sentence(version: ModelVersion) -> str:
    """Why the event count is not the number of stored interactions, with this version's numbers."""
    summary = version.data_summary or {}
    if "users" not in summary or "events" not in summary:
        return ""
    who = (
        "one per reader with interactions newer than the version it continued, with their recent history"
        if version.kind == ModelVersion.Kind.REFRESH
        else "one per reader (signed-in user or visitor)"
    )
    return (
        f"{summary['users']:,} training sequences from {summary['events']:,} events: {who}. There are "
        "fewer events than stored interactions: only event types with a positive weight count, a run of "
        "events on the same item counts once, and each history keeps its newest HISTORY_LENGTH events."
    )


def progress_payload() -> dict[str, Any]:
    """Queued and running versions with their latest progress, for the polling JS."""
    jobs = ModelVersion.objects.filter(status__in=IN_FLIGHT).order_by("created_at")
    active = ModelVersion.objects.active()
    return {
        "jobs": [
            {
                "id": v.pk,
                "name": v.name,
                "kind": v.kind,
                "status": v.status,
                "progress": v.progress,
                "started_at": v.started_at.isoformat() if v.started_at else None,
            }
            for v in jobs.only("pk", "name", "kind", "status", "progress", "started_at")
        ],
        "active": active.name if active else None,
    }


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Versions newest first; the active one is marked, failed runs show their error."""

    change_list_template = "admin/recommender/modelversion/change_list.html"
    change_form_template = "admin/recommender/modelversion/change_form.html"
    # Fits a 1400 px screen beside the filters: the name already says when a version was created.
    list_display = (
        "name",
        "kind",
        "status_display",
        "val_ndcg_display",
        "same_events_display",
        "epochs",
        "device",
        "finished",
    )
    list_filter = ("status", "kind", "is_active")
    search_fields = ("name",)
    exclude = ("history", "progress", "config", "metrics", "data_summary", "gate_comparison")
    readonly_fields = (
        "name",
        "kind",
        "status",
        "parent",
        "is_active",
        "error",
        "gate_reason",
        "comparison_display",
        "artifact_name",
        "checksum",
        "device",
        "task_id",
        "created_at",
        "started_at",
        "finished_at",
        "activated_at",
    )

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("history", "config", "data_summary")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training runs

    def has_delete_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        if obj is not None and obj.is_active:
            return False  # the served version goes away only by activating or rolling back to another
        return super().has_delete_permission(request, obj)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: ModelVersion) -> str:
        """The status, and whether this is the version being served (one column, not two)."""
        if obj.is_active:
            return format_html("{} · <strong>active</strong>", obj.get_status_display())
        return obj.get_status_display()

    @admin.display(description="val NDCG@10")
    def val_ndcg_display(self, obj: ModelVersion) -> str:
        return f"{obj.val_ndcg:.4f}" if obj.val_ndcg is not None else "-"

    @admin.display(description="vs active")
    def same_events_display(self, obj: ModelVersion) -> str:
        """NDCG@10 of this version / of the one it was compared with, on the same newest events."""
        shared = obj.gate_comparison or {}
        if not shared.get("candidate"):
            return "-"
        return f"{shared['candidate']['ndcg@10']:.4f} / {shared['active']['ndcg@10']:.4f}"

    @admin.display(description="compared with the active version")
    def comparison_display(self, obj: ModelVersion) -> str:
        """What the gate decided on, in words: both versions on the events neither trained on."""
        shared = obj.gate_comparison or {}
        if not shared.get("candidate"):
            return "No comparison: there was no active version, or no reader with events newer than its data."
        cand, active = shared["candidate"], shared["active"]
        return (
            f"NDCG@10 {cand['ndcg@10']:.4f} vs {active['ndcg@10']:.4f}, HR@10 {cand['hr@10']:.4f} vs "
            f"{active['hr@10']:.4f} ({shared['active_version']}), on the same {shared['users']} readers' "
            f"newest events, which neither version trained on."
        )

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj: ModelVersion) -> str:
        return display.moment(obj.finished_at)

    @admin.display(description="epochs")
    def epochs(self, obj: ModelVersion) -> str:
        """Epochs run of the planned maximum (the last progress entry; early stopping ends runs short)."""
        progress = obj.progress or {}
        return f"{progress['epoch']}/{progress.get('epochs', '?')}" if progress.get("epoch") else ""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("train/", wrap(self.train_view), name="recommender_modelversion_train"),
            path("refresh/", wrap(self.refresh_view), name="recommender_modelversion_refresh"),
            path("rollback/", wrap(self.rollback_view), name="recommender_modelversion_rollback"),
            path("progress/", wrap(self.progress_view), name="recommender_modelversion_progress"),
            path("<int:pk>/activate/", wrap(self.activate_view), name="recommender_modelversion_activate"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = {
            "can_run": self.has_change_permission(request),
            "progress_url": reverse("admin:recommender_modelversion_progress"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        version = self.get_object(request, object_id)
        context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete_link": False,
            **(extra_context or {}),
        }
        if version is not None:
            context.update(training_curves(version.history or []))
            context.update(
                version=version,
                can_run=self.has_change_permission(request, version),
                metrics=[(k, display.number(v)) for k, v in sorted((version.metrics or {}).items())],
                data_summary=data_summary_rows(version.data_summary or {}),
                data_sentence=data_summary_sentence(version),
                config=[(k, display.number(v)) for k, v in sorted((version.config or {}).items())],
                progress_url=reverse("admin:recommender_modelversion_progress"),
            )
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _check_post(self, request: HttpRequest) -> HttpResponse | None:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        return None

    def _back(self, request: HttpRequest, url: str | None = None) -> HttpResponseRedirect:
        return HttpResponseRedirect(url or reverse("admin:recommender_modelversion_changelist"))

    def train_view(self, request: HttpRequest) -> HttpResponse:
        return self._start(request, ModelVersion.Kind.TRAIN)

    def refresh_view(self, request: HttpRequest) -> HttpResponse:
        return self._start(request, ModelVersion.Kind.REFRESH)

    def _start(self, request: HttpRequest, kind: str) -> HttpResponse:
        if (denied := self._check_post(request)) is not None:
            return denied
        try:
            message = actions.start_training(kind)
        except Exception as exc:  # eager mode runs the job here: show its failure instead of a 500
            self.message_user(request, f"The {kind} job failed: {exc}", messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return self._back(request)

    def activate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if (denied := self._check_post(request)) is not None:
            return denied
        version = get_object_or_404(ModelVersion, pk=pk)
        try:
            model_registry.activate(version, by=request.user)
        except model_registry.ModelRegistryError as exc:
            self.message_user(request, f"Could not activate {version.name}: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"{version.name} is now the active model.", messages.SUCCESS)
        return self._back(request, reverse("admin:recommender_modelversion_change", args=[version.pk]))

    def rollback_view(self, request: HttpRequest) -> HttpResponse:
        if (denied := self._check_post(request)) is not None:
            return denied
        try:
            version = model_registry.rollback(by=request.user)
        except model_registry.ModelRegistryError as exc:
            self.message_user(request, f"Could not roll back: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Rolled back: {version.name} is active again.", messages.SUCCESS)
        return self._back(request)

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(progress_payload())
