"""The recommender's dashboard and tuning page (with its live preview) as Wagtail admin views.

They call what the core's Django admin pages call (``dashboard_charts``, ``TuningForm``,
``save_tuning``, ``preview_response``) and ask for the same model permissions,
checked by Wagtail's ``ModelPermissionPolicy``; Wagtail's admin turns a refusal into
its "no permission" redirect (a 403 for a script's request).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.permission_policies import ModelPermissionPolicy

from recommender.admin import tuning_forms
from recommender.admin.dashboard import WINDOWS, dashboard_charts
from recommender.admin.tuning import HISTORY_SHOWN, PreviewSubjectForm, preview_response
from recommender.admin.tuning_forms import TuningForm
from recommender.models import RecommendationLog, TuningChange, TuningSettings

DEFAULT_DAYS = 14


class RecommenderAdminView(PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView):
    """A page of the recommender's tools in Wagtail's admin, under a "Recommender" breadcrumb."""

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items, {"url": "", "label": self.get_page_title()}]


class DashboardView(RecommenderAdminView):
    """Served lists, clicks, CTR, coverage, fallbacks and model metrics of the last N days, as SVG charts.

    Needs ``recommender.view_recommendationlog``, as the core dashboard does.
    """

    permission_policy = ModelPermissionPolicy(RecommendationLog)
    any_permission_required = ["view", "change"]
    template_name = "recommender_wagtail/dashboard.html"
    page_title = "Recommender dashboard"
    header_icon = "view"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        try:
            days = int(self.request.GET.get("days", DEFAULT_DAYS))
        except ValueError:
            days = DEFAULT_DAYS
        days = days if days in WINDOWS else DEFAULT_DAYS
        return {
            **super().get_context_data(**kwargs),
            "days": days,
            "windows": WINDOWS,
            **dashboard_charts(days),
        }


class TuningView(RecommenderAdminView):
    """The run-time tuning form, its history and the live preview; saving needs ``change_tuningsettings``."""

    permission_policy = ModelPermissionPolicy(TuningSettings)
    any_permission_required = ["view", "change"]
    template_name = "recommender_wagtail/tuning.html"
    page_title = "Recommender tuning"
    header_icon = "cogs"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.user_has_permission("change"):
            raise PermissionDenied
        form = TuningForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        change = tuning_forms.save_tuning(form.values, by=request.user)
        if change:
            messages.success(request, f"Tuning saved: {', '.join(change.after)} changed.")
        else:
            messages.info(request, "Nothing changed.")
        return HttpResponseRedirect(request.path)

    def get_context_data(self, form: TuningForm | None = None, **kwargs: Any) -> dict[str, Any]:
        can_change = self.user_has_permission("change")
        form = form or TuningForm(initial=TuningForm.initial_from(tuning_forms.effective_values()))
        if not can_change:
            for field in form.fields.values():
                field.disabled = True
        history = TuningChange.objects.select_related("changed_by")[:HISTORY_SHOWN]
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "can_change": can_change,
            "subject_form": PreviewSubjectForm(initial={"limit": 10, "placement": "default"}),
            "history": [(change, sorted(change.after)) for change in history],
            "preview_url": reverse("recommender_wagtail:tuning_preview"),
        }


class TuningPreviewView(PermissionCheckedMixin, View):
    """JSON for the live preview: the saved tuning's list and the edited one's (``change_tuningsettings``)."""

    permission_policy = ModelPermissionPolicy(TuningSettings)
    permission_required = "change"
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> JsonResponse:
        return preview_response(request)
