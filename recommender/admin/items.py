"""Items, tags and automatic tag suggestions: embedding status, re-embedding, bulk review."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from recommender.admin import actions
from recommender.models import Feedback, Item, ItemTag, Tag
from recommender.registry import registry


def feedback_count_subquery(outer: str = "pk") -> Coalesce:
    """Feedback rows on the item ``outer`` names: a correlated, indexed subquery, not a join + GROUP BY."""
    counts = (
        Feedback.objects.filter(item_id=OuterRef(outer))
        .order_by()
        .values("item_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


class EmbeddingStatusFilter(admin.SimpleListFilter):
    """Missing (never embedded), stale (text changed since) or current."""

    title = "embedding"
    parameter_name = "embedding"

    def lookups(self, request, model_admin):
        return [("missing", "Missing"), ("stale", "Stale"), ("current", "Current")]

    def queryset(self, request, queryset):
        if self.value() == "missing":
            return queryset.filter(embedding__isnull=True)
        if self.value() == "stale":
            return queryset.filter(embedding__isnull=False).exclude(embedded_hash=F("content_hash"))
        if self.value() == "current":
            return queryset.filter(embedding__isnull=False, embedded_hash=F("content_hash"))
        return queryset


class ContentTypeFilter(admin.SimpleListFilter):
    """The content types registered with the recommender, not every model the site has."""

    title = "content type"
    parameter_name = "content_type"

    def lookups(self, request, model_admin):
        types = ContentType.objects.get_for_models(*registry.registered_models())
        return sorted(
            ((str(ct.pk), capfirst(model._meta.verbose_name_plural)) for model, ct in types.items()),
            key=lambda choice: choice[1],
        )

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(content_type_id=int(self.value()))
        return queryset


class ItemTagInline(admin.TabularInline):
    model = ItemTag
    extra = 0
    autocomplete_fields = ("tag",)
    fields = ("tag", "source", "status", "weight")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    """The mirrored catalogue; content comes from the host, so only flags and tags are edited here."""

    list_display = (
        "title",
        "content_type",
        "is_active",
        "published_at",
        "embedding_status",
        "feedback_count",
        "trending_score",
    )
    list_filter = ("is_active", EmbeddingStatusFilter, ContentTypeFilter, "published_at")
    search_fields = ("title", "object_id")
    date_hierarchy = "published_at"
    inlines = (ItemTagInline,)
    actions = ("reembed",)
    list_select_related = ("content_type",)
    readonly_fields = (
        "content_type",
        "object_id",
        "title",
        "url",
        "text",
        "content_hash",
        "embedding_model",
        "embedding_dim",
        "embedded_hash",
        "embedded_at",
        "impression_count",
        "view_count",
        "click_count",
        "like_count",
        "trending_score",
        "created_at",
        "updated_at",
        "open_link",
    )
    exclude = ("embedding",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        # The vector is never shown; a flag is enough and keeps the list light.
        return (
            super()
            .get_queryset(request)
            .defer("embedding", "text")
            .annotate(
                has_vector=ExpressionWrapper(Q(embedding__isnull=False), output_field=BooleanField()),
                n_feedback=feedback_count_subquery(),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items mirror host content: add the host object instead

    @admin.display(description="embedding")
    def embedding_status(self, obj: Item) -> str:
        if not obj.has_vector:
            return "missing"
        return "current" if obj.embedded_hash == obj.content_hash else "stale"

    @admin.display(description="feedback", ordering="n_feedback")
    def feedback_count(self, obj: Item) -> int:
        return getattr(obj, "n_feedback", 0)

    @admin.display(description="page")
    def open_link(self, obj: Item) -> str:
        return (
            format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', obj.url, obj.url)
            if obj.url
            else "-"
        )

    @admin.action(description="Re-embed selected items", permissions=["change"])
    def reembed(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        count = actions.reembed_items(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} item(s) queued for embedding.", messages.SUCCESS)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Topics, with how many items carry each and how many suggestions wait for review."""

    list_display = ("name", "slug", "accepted_items", "pending_suggestions")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    exclude = ("embedding",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        accepted = Count("item_tags", filter=Q(item_tags__status=ItemTag.Status.ACCEPTED))
        pending = Count("item_tags", filter=Q(item_tags__status=ItemTag.Status.PENDING))
        return (
            super().get_queryset(request).defer("embedding").annotate(n_accepted=accepted, n_pending=pending)
        )

    @admin.display(description="items", ordering="n_accepted")
    def accepted_items(self, obj: Tag) -> int:
        return obj.n_accepted

    @admin.display(description="suggestions to review", ordering="n_pending")
    def pending_suggestions(self, obj: Tag) -> str:
        if not obj.n_pending:
            return "0"
        url = reverse("admin:recommender_itemtag_changelist")
        return format_html(
            '<a href="{}?tag__id__exact={}&status__exact=pending">{}</a>', url, obj.pk, obj.n_pending
        )


@admin.register(ItemTag)
class ItemTagAdmin(admin.ModelAdmin):
    """Item-tag links; filter source=automatic, status=pending to review the embedder's suggestions."""

    list_display = ("item", "tag", "source", "status", "weight", "created_at")
    list_filter = ("source", "status", ("tag", admin.RelatedOnlyFieldListFilter))
    search_fields = ("item__title", "tag__name")
    autocomplete_fields = ("item", "tag")
    list_select_related = ("item", "tag")
    actions = ("accept", "reject")
    ordering = ("-weight", "-created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ItemTag]:
        return super().get_queryset(request).defer("item__embedding", "item__text", "tag__embedding")

    @admin.action(description="Accept selected suggestions", permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet[ItemTag]) -> None:
        count = actions.review_tag_suggestions(queryset, ItemTag.Status.ACCEPTED)
        self.message_user(request, f"{count} suggestion(s) accepted.", messages.SUCCESS)

    @admin.action(description="Reject selected suggestions", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[ItemTag]) -> None:
        count = actions.review_tag_suggestions(queryset, ItemTag.Status.REJECTED)
        self.message_user(request, f"{count} suggestion(s) rejected.", messages.SUCCESS)
