"""The dashboard (served lists, clicks, coverage, models) and the admin of served lists it hangs off.

The dashboard lives under the ``RecommendationLog`` admin because it is a view of
what was served; it needs ``recommender.view_recommendationlog``.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from recommender.admin import display, stats
from recommender.admin.charts import Series, bar_chart, line_chart
from recommender.models import RecommendationLog

WINDOWS = (7, 14, 30, 90)


@admin.register(RecommendationLog)
class RecommendationLogAdmin(admin.ModelAdmin):
    """Read-only list of served lists, and the entry point of the dashboard."""

    change_list_template = "admin/recommender/recommendationlog/change_list.html"
    list_display = ("list_id", "placement", "who", "size", "version", "served_at")
    list_filter = ("placement", "created_at")
    search_fields = ("recomm_id", "visitor_id")
    date_hierarchy = "created_at"
    list_select_related = ("model_version", "user")
    readonly_fields = (
        "recomm_id",
        "user",
        "visitor_id",
        "placement",
        "context_item",
        "items",
        "page",
        "model_version",
        "created_at",
    )
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RecommendationLog | None = None) -> bool:
        return False

    @admin.display(description="list id", ordering="recomm_id")
    def list_id(self, obj: RecommendationLog) -> str:
        """The start of the id tells lists apart; the whole id is in the tooltip and searchable."""
        if len(obj.recomm_id) <= 11:
            return obj.recomm_id
        return format_html('<span title="{}">{}…</span>', obj.recomm_id, obj.recomm_id[:10])

    @admin.display(description="for")
    def who(self, obj: RecommendationLog) -> str:
        return display.identity(obj.user, obj.visitor_id)

    @admin.display(description="model", ordering="model_version__name")
    def version(self, obj: RecommendationLog) -> str:
        return obj.model_version.name if obj.model_version else "-"

    @admin.display(description="served at", ordering="created_at")
    def served_at(self, obj: RecommendationLog) -> str:
        return display.moment(obj.created_at)

    @admin.display(description="items")
    def size(self, obj: RecommendationLog) -> int:
        return len(obj.items or ())

    def get_urls(self):
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="recommender_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Charts of the last N days, rendered as SVG on the server."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", 14))
        except ValueError:
            days = 14
        days = days if days in WINDOWS else 14
        context = {
            **self.admin_site.each_context(request),
            "title": "Recommender dashboard",
            "opts": self.model._meta,
            "days": days,
            "windows": WINDOWS,
            **dashboard_charts(days),
        }
        return TemplateResponse(request, "admin/recommender/dashboard.html", context)


def dashboard_charts(days: int) -> dict:
    """Every chart of the dashboard, as SVG markup, plus the headline numbers shown above them."""
    dates, placements = stats.placement_stats(days)
    labels = [f"{d:%b} {d.day}" for d in dates]
    served = stats.served_summary(days)
    history = stats.model_metric_history()
    # Version names are long and alike; the axis shows when each was trained, the tooltip its name.
    version_labels = [f"{t:%b} {t.day} {t:%H:%M}" for t in map(timezone.localtime, history.created)]
    tag_shares = stats.exposure_by_tag(served.exposure)
    totals_impressions = sum(sum(p.impressions) for p in placements)
    totals_clicks = sum(sum(p.clicks) for p in placements)
    return {
        "impressions_chart": line_chart(
            "Impressions per placement",
            labels,
            [Series(p.placement, p.impressions) for p in placements],
            integer=True,
        ),
        "clicks_chart": line_chart(
            "Clicks per placement", labels, [Series(p.placement, p.clicks) for p in placements], integer=True
        ),
        "ctr_chart": line_chart(
            "Click-through rate per placement",
            labels,
            [Series(p.placement, p.ctr) for p in placements],
            percent=True,
        ),
        "coverage_chart": line_chart(
            "Catalogue coverage (distinct items served / active items)",
            labels,
            [Series("coverage", served.coverage)],
            percent=True,
        ),
        "fallback_chart": line_chart(
            "Share of served slots from fallbacks",
            labels,
            [Series("fallback share", served.fallback_share)],
            percent=True,
        ),
        "metrics_chart": line_chart(
            "Validation metrics of trained versions",
            version_labels,
            [Series(name, values) for name, values in history.values.items()],
            x_titles=history.names,
        ),
        "exposure_chart": bar_chart("Share of served slots per tag", tag_shares, percent=True),
        "headline": {
            "impressions": totals_impressions,
            "clicks": totals_clicks,
            "ctr": totals_clicks / totals_impressions if totals_impressions else None,
            "lists": sum(served.lists),
            "coverage": served.total_coverage,
            "active_items": served.catalogue,
            "reasons": served.reasons.most_common(),
        },
    }
