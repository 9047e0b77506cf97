"""The feedback review queue: filter, count per item, and act on items in bulk."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from recommender.admin import actions, display
from recommender.admin.items import feedback_count_subquery
from recommender.models import EditorialRule, Feedback, Tag


class ItemTagFilter(admin.SimpleListFilter):
    """Feedback on items carrying one tag (only tags that have feedback are offered)."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        tags = Tag.objects.filter(items__feedback__isnull=False).distinct().order_by("name")
        return [(str(tag.pk), tag.name) for tag in tags.only("pk", "name")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(item__tags__pk=self.value()).distinct()
        return queryset


class ItemFilter(admin.SimpleListFilter):
    """Feedback on one item; the most reported items are offered with their counts."""

    title = "item (most feedback)"
    parameter_name = "item"
    offered = 10

    def lookups(self, request, model_admin):
        top = (
            Feedback.objects.values("item_id", "item__title")
            .annotate(n=Count("pk"))
            .order_by("-n", "item_id")[: self.offered]
        )
        return [(str(row["item_id"]), f"{row['item__title'] or row['item_id']} ({row['n']})") for row in top]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(item_id=int(self.value()))
        return queryset


class HasReasonFilter(admin.SimpleListFilter):
    """Reports and notes that came with a written reason."""

    title = "written reason"
    parameter_name = "has_reason"

    def lookups(self, request, model_admin):
        return [("yes", "With a reason"), ("no", "Without")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(reason="")
        if self.value() == "no":
            return queryset.filter(reason="")
        return queryset


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Explicit feedback, newest first; blocking or burying an item acts on every placement from now on."""

    list_display = (
        "received",
        "kind",
        "short_reason",
        "item_link",
        "item_feedback",
        "placement",
        "who",
        "status",
    )
    list_filter = (
        "status",
        "kind",
        HasReasonFilter,
        ItemTagFilter,
        ItemFilter,
        "placement",
        "created_at",
    )
    search_fields = ("reason", "item__title")
    date_hierarchy = "created_at"
    list_select_related = ("item", "user")
    actions = ("mark_reviewed", "block_item", "bury_item", "open_item")
    readonly_fields = (
        "user",
        "visitor_id",
        "item",
        "kind",
        "reason",
        "recomm_id",
        "placement",
        "created_at",
        "reviewed_by",
        "reviewed_at",
    )
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Feedback]:
        return (
            super()
            .get_queryset(request)
            .defer("item__embedding", "item__text")
            .annotate(n_item_feedback=feedback_count_subquery(outer="item_id"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # feedback comes from users

    @admin.display(description="received", ordering="created_at")
    def received(self, obj: Feedback) -> str:
        return display.moment(obj.created_at)

    @admin.display(description="reason")
    def short_reason(self, obj: Feedback) -> str:
        return obj.reason if len(obj.reason) <= 60 else obj.reason[:59] + "…"

    @admin.display(description="item", ordering="item__title")
    def item_link(self, obj: Feedback) -> str:
        url = reverse("admin:recommender_item_change", args=[obj.item_id])
        return format_html('<a href="{}">{}</a>', url, obj.item)

    @admin.display(description="feedback on item", ordering="n_item_feedback")
    def item_feedback(self, obj: Feedback) -> str:
        url = reverse("admin:recommender_feedback_changelist")
        return format_html('<a href="{}?item={}">{}</a>', url, obj.item_id, obj.n_item_feedback)

    @admin.display(description="from")
    def who(self, obj: Feedback) -> str:
        return display.identity(obj.user, obj.visitor_id)

    @admin.action(description="Mark selected feedback as reviewed", permissions=["change"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        count = actions.mark_feedback_reviewed(queryset, by=request.user)
        self.message_user(request, f"{count} feedback item(s) marked reviewed.", messages.SUCCESS)

    @admin.action(description="Block the items of selected feedback", permissions=["change"])
    def block_item(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        self._rule_action(request, queryset, EditorialRule.Action.BLOCK)

    @admin.action(description="Bury the items of selected feedback", permissions=["change"])
    def bury_item(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        self._rule_action(request, queryset, EditorialRule.Action.BURY)

    @admin.action(description="Open the items of selected feedback", permissions=["view"])
    def open_item(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> HttpResponseRedirect:
        item_ids = sorted(set(queryset.values_list("item_id", flat=True)))
        if len(item_ids) == 1:
            return HttpResponseRedirect(reverse("admin:recommender_item_change", args=[item_ids[0]]))
        ids = ",".join(map(str, item_ids))
        return HttpResponseRedirect(f"{reverse('admin:recommender_item_changelist')}?id__in={ids}")

    def _rule_action(self, request: HttpRequest, queryset: QuerySet[Feedback], action: str) -> None:
        if not request.user.has_perm("recommender.add_editorialrule"):
            self.message_user(request, "You need permission to add editorial rules.", messages.ERROR)
            return
        rules = actions.act_on_feedback(queryset, action, by=request.user)
        verb = "blocked" if action == EditorialRule.Action.BLOCK else "buried"
        self.message_user(
            request, f"{len(rules)} item(s) {verb}; feedback marked actioned.", messages.SUCCESS
        )
