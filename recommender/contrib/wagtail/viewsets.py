"""Editorial rules, feedback review and the model registry as Wagtail viewsets, in Wagtail's own look.

Each viewset checks Django model permissions through Wagtail's ``ModelPermissionPolicy``
(``recommender.view_editorialrule``, ``recommender.change_modelversion``...), the same
permissions the core's Django admin asks for, so one group in Wagtail's group editor
grants both. What the buttons do is the core's: the rules form and its validation
(``recommender.admin.rules``), the feedback actions (``recommender.admin.actions``),
activation and rollback (``recommender.training.model_registry``), training
(``actions.start_training``) and the registry's charts and tables
(``recommender.admin.models_registry``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views import View
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.ui.tables import BooleanColumn, Column, DateColumn
from wagtail.admin.views import generic
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.admin.viewsets.model import ModelViewSet

from recommender.admin import actions, display
from recommender.admin.items import feedback_count_subquery
from recommender.admin.models_registry import (
    data_summary_rows,
    data_summary_sentence,
    progress_payload,
    training_curves,
)
from recommender.admin.rules import EditorialRuleForm, rule_in_force
from recommender.models import EditorialRule, Feedback, ModelVersion
from recommender.training import model_registry

RULE_PERMISSION = "recommender.add_editorialrule"  # blocking or burying from feedback creates rules


class ReadOnlyModelViewSet(ModelViewSet):
    """A listing and a detail (inspect) page, no add, edit or copy: the site makes these rows, not editors.

    ``deletable`` adds Wagtail's delete view (``recommender.delete_*``).
    """

    inspect_view_enabled = True
    copy_view_enabled = False
    add_to_reference_index = False  # nothing refers to these rows; readers' feedback would pay a write each
    deletable = False

    def get_common_view_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        absent = {
            "add_url_name": None,
            "edit_url_name": None,
            "history_url_name": None,
            "usage_url_name": None,
        }
        if not self.deletable:
            absent["delete_url_name"] = None
        return super().get_common_view_kwargs(**{**absent, **kwargs})

    def get_urlpatterns(self) -> list:
        pk = f"<{self.pk_path_converter}:pk>"
        urls = [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path(f"inspect/{pk}/", self.inspect_view, name="inspect"),
        ]
        if self.deletable:
            urls.append(path(f"delete/{pk}/", self.delete_view, name="delete"))
        return urls


# Editorial rules ---------------------------------------------------------------------------------


class EditorialRuleAdminForm(WagtailAdminModelForm, EditorialRuleForm):
    """The core's rule form (placements from settings, one target, pin position, factor, window) with
    Wagtail's widgets."""

    class Meta(EditorialRuleForm.Meta):
        pass


class EditorialRuleCreateView(generic.CreateView):
    """Records who made the rule, as the core admin does."""

    def save_instance(self) -> EditorialRule:
        self.form.instance.created_by = self.request.user
        return super().save_instance()


def rule_target(rule: EditorialRule) -> str:
    return f"item: {rule.item}" if rule.item_id else f"tag: {rule.tag}"


class EditorialRuleViewSet(ModelViewSet):
    """Pin, boost, bury or block an item or a tag: list, add, edit and delete, with the core's validation."""

    model = EditorialRule
    icon = "pick"
    add_view_class = EditorialRuleCreateView
    copy_view_enabled = False
    add_to_reference_index = False  # a rule refers to items, which are not pages, images or snippets
    list_display = [
        "action",
        Column("target", label="Target", accessor=rule_target),
        Column("placement", label="Placement", accessor=lambda r: r.placement or "every placement"),
        "position",
        "factor",
        DateColumn("starts_at", label="Starts"),
        DateColumn("ends_at", label="Ends"),
        BooleanColumn("in_force", label="In force", accessor=rule_in_force),
        Column("created_by", label="Created by"),
    ]
    list_filter = ["action", "is_enabled", "placement"]
    search_fields = ["item__title", "tag__name", "note"]
    search_backend_name = None  # the ORM: rules are not in Wagtail's search index

    def get_index_view_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        rules = EditorialRule.objects.select_related("item", "tag", "created_by")
        return super().get_index_view_kwargs(queryset=rules.defer("item__embedding", "item__text"), **kwargs)

    def get_form_class(self, for_update: bool = False) -> type[EditorialRuleAdminForm]:
        return EditorialRuleAdminForm


# Feedback review ---------------------------------------------------------------------------------


class FeedbackReviewView(generic.InspectView):
    """One piece of feedback; POST ``action`` = reviewed | block | bury, as the core admin's actions."""

    template_name = "recommender_wagtail/feedback_review.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_review"] = self.user_has_permission("change")
        context["can_add_rules"] = self.request.user.has_perm(RULE_PERMISSION)
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.user_has_permission("change"):
            raise PermissionDenied
        selected = Feedback.objects.filter(pk=self.object.pk)
        action = request.POST.get("action")
        if action == "reviewed":
            actions.mark_feedback_reviewed(selected, by=request.user)
            messages.success(request, "Feedback marked reviewed.")
        elif action in (EditorialRule.Action.BLOCK, EditorialRule.Action.BURY):
            if not request.user.has_perm(RULE_PERMISSION):
                raise PermissionDenied
            actions.act_on_feedback(selected, action, by=request.user)
            verb = "blocked" if action == EditorialRule.Action.BLOCK else "buried"
            messages.success(request, f"“{self.object.item}” {verb}; feedback marked actioned.")
        else:
            messages.error(request, "Unknown action.")
        return HttpResponseRedirect(request.path)


def feedback_reason(feedback: Feedback) -> str:
    return feedback.reason if len(feedback.reason) <= 60 else feedback.reason[:59] + "…"


class FeedbackViewSet(ReadOnlyModelViewSet):
    """The review queue, newest first; each row opens the feedback with its block/bury/reviewed buttons."""

    model = Feedback
    icon = "comment"
    inspect_view_class = FeedbackReviewView
    deletable = True
    list_display = [
        "kind",
        Column("reason", label="Reason", accessor=feedback_reason),
        Column("item", label="Item"),
        Column("n_item_feedback", label="Feedback on item", sort_key="n_item_feedback"),
        "placement",
        Column("who", label="From", accessor=lambda f: display.identity(f.user, f.visitor_id)),
        "status",
        DateColumn("created_at", label="Received"),
    ]
    list_filter = ["status", "kind", "placement"]
    search_fields = ["reason", "item__title"]
    search_backend_name = None
    inspect_view_fields = [
        "kind",
        "status",
        "reason",
        "item",
        "placement",
        "recomm_id",
        "user",
        "visitor_id",
        "created_at",
        "reviewed_by",
        "reviewed_at",
    ]

    def get_index_view_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        feedback = (
            Feedback.objects.select_related("item", "user")
            .defer("item__embedding", "item__text")
            .annotate(n_item_feedback=feedback_count_subquery(outer="item_id"))
        )
        return super().get_index_view_kwargs(queryset=feedback, default_ordering="-created_at", **kwargs)


# Model registry ----------------------------------------------------------------------------------


def validation_ndcg(version: ModelVersion) -> str:
    return f"{version.val_ndcg:.4f}" if version.val_ndcg is not None else "-"


class ModelVersionIndexView(generic.IndexView):
    """The versions, with Train now / Refresh now / Roll back for those who may change versions."""

    template_name = "recommender_wagtail/modelversion_index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_run"] = self.user_has_permission("change")
        return context


class ModelVersionInspectView(generic.InspectView):
    """A version: curves, metrics, training data, configuration, and Activate when it may be served."""

    template_name = "recommender_wagtail/modelversion_inspect.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        version = self.object
        context.update(training_curves(version.history or []))
        context.update(
            version=version,
            can_run=self.user_has_permission("change"),
            metrics=[(k, display.number(v)) for k, v in sorted((version.metrics or {}).items())],
            data_summary=data_summary_rows(version.data_summary or {}),
            data_sentence=data_summary_sentence(version),
            config=[(k, display.number(v)) for k, v in sorted((version.config or {}).items())],
        )
        return context


class ModelActionView(PermissionCheckedMixin, View):
    """POST only, ``recommender.change_modelversion``: train, refresh, roll back or activate a version."""

    permission_required = "change"
    http_method_names = ["post"]
    index_url_name = None
    inspect_url_name = None
    operation = ""

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        back = reverse(self.index_url_name)
        if self.operation in (ModelVersion.Kind.TRAIN, ModelVersion.Kind.REFRESH):
            try:
                messages.success(request, actions.start_training(self.operation))
            except Exception as exc:  # eager mode runs the job here: show its failure instead of a 500
                messages.error(request, f"The {self.operation} job failed: {exc}")
        elif self.operation == "rollback":
            try:
                version = model_registry.rollback(by=request.user)
            except model_registry.ModelRegistryError as exc:
                messages.error(request, f"Could not roll back: {exc}")
            else:
                messages.success(request, f"Rolled back: {version.name} is active again.")
        else:
            version = get_object_or_404(ModelVersion, pk=pk)
            back = reverse(self.inspect_url_name, args=[version.pk])
            try:
                model_registry.activate(version, by=request.user)
            except model_registry.ModelRegistryError as exc:
                messages.error(request, f"Could not activate {version.name}: {exc}")
            else:
                messages.success(request, f"{version.name} is now the active model.")
        return HttpResponseRedirect(back)


class ModelProgressView(PermissionCheckedMixin, View):
    """JSON of queued and running jobs, polled by the registry pages (the core's ``model-progress.js``)."""

    any_permission_required = ["view", "change"]

    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(progress_payload())


class ModelVersionViewSet(ReadOnlyModelViewSet):
    """Trained versions newest first; a version is activated, never edited, and the served one stays."""

    model = ModelVersion
    icon = "history"
    index_view_class = ModelVersionIndexView
    inspect_view_class = ModelVersionInspectView
    list_display = [
        "name",
        "kind",
        "status",
        BooleanColumn("is_active", label="Active"),
        Column("val_ndcg", label="Val NDCG@10", accessor=validation_ndcg),
        "device",
        DateColumn("finished_at", label="Finished"),
    ]
    list_filter = ["status", "kind", "is_active"]
    search_fields = ["name"]
    search_backend_name = None
    inspect_view_fields = [
        "name",
        "kind",
        "status",
        "parent",
        "is_active",
        "error",
        "gate_reason",
        "artifact_name",
        "checksum",
        "device",
        "created_at",
        "started_at",
        "finished_at",
        "activated_at",
    ]

    def get_index_view_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        versions = ModelVersion.objects.defer("history", "config", "data_summary")
        return super().get_index_view_kwargs(queryset=versions, **kwargs)

    def action_view(self, operation: str) -> Any:
        return self.construct_view(
            ModelActionView, operation=operation, inspect_url_name=self.get_url_name("inspect")
        )

    def get_urlpatterns(self) -> list:
        return [
            *super().get_urlpatterns(),
            path("train/", self.action_view(ModelVersion.Kind.TRAIN), name="train"),
            path("refresh/", self.action_view(ModelVersion.Kind.REFRESH), name="refresh"),
            path("rollback/", self.action_view("rollback"), name="rollback"),
            path("activate/<int:pk>/", self.action_view("activate"), name="activate"),
            path("progress/", self.construct_view(ModelProgressView), name="progress"),
        ]


rules_viewset = EditorialRuleViewSet("recommender_rules", url_prefix="recommender/rules")
feedback_viewset = FeedbackViewSet("recommender_feedback", url_prefix="recommender/feedback")
models_viewset = ModelVersionViewSet("recommender_models", url_prefix="recommender/models")
