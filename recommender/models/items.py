"""Mirrored content: one ``Item`` per registered host object, and its tags."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q


class ItemQuerySet(models.QuerySet):
    """Queries the recommend pipeline and the workers repeat."""

    def active(self) -> ItemQuerySet:
        return self.filter(is_active=True)

    def servable(self) -> ItemQuerySet:
        """Items a reader may be shown now: active and published (or undated)."""
        from django.utils import timezone

        return self.active().filter(Q(published_at__isnull=True) | Q(published_at__lte=timezone.now()))

    def needing_embedding(self, model_name: str) -> ItemQuerySet:
        """Items with no vector, a vector from another model, or text changed since embedding."""
        return self.exclude(embedding_model=model_name, embedded_hash=models.F("content_hash"))


class Item(models.Model):
    """A recommendable piece of host content, mirrored from the registry.

    The model's item id is ``str(pk)``; the host object is reached through the
    generic relation, so host models need no inheritance.
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    content_object = GenericForeignKey("content_type", "object_id")

    title = models.CharField(max_length=300, blank=True)
    url = models.CharField(max_length=500, blank=True)
    text = models.TextField(blank=True, help_text="Snapshot of the text the embedder reads.")
    content_hash = models.CharField(max_length=64, blank=True)

    embedding = models.BinaryField(null=True, blank=True, help_text="float32 little-endian vector")
    embedding_model = models.CharField(max_length=200, blank=True)
    embedding_dim = models.PositiveIntegerField(null=True, blank=True)
    embedded_hash = models.CharField(max_length=64, blank=True, help_text="content_hash at embedding time")
    embedded_at = models.DateTimeField(null=True, blank=True)

    published_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="Published, public and still present.")

    impression_count = models.PositiveIntegerField(default=0)
    view_count = models.PositiveIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)
    like_count = models.PositiveIntegerField(default=0)
    trending_score = models.FloatField(
        default=0.0, help_text="Time-decayed engagement, see compute_trending."
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    tags = models.ManyToManyField("recommender.Tag", through="recommender.ItemTag", related_name="items")

    objects = ItemQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id"], name="recommender_item_unique_object"
            ),
        ]
        indexes = [
            # Trending and fresh lists walk these in order and stop after k rows; with the
            # pk tie-break inside the index no sort of the whole catalogue is needed.
            models.Index(
                fields=["-published_at", "-id"], condition=Q(is_active=True), name="rec_item_active_pub"
            ),
            models.Index(
                fields=["-trending_score", "-id"], condition=Q(is_active=True), name="rec_item_active_trend"
            ),
            # Every serving process asks "anything embedded since?" every MODEL_CHECK_INTERVAL.
            models.Index(fields=["embedded_at"], name="rec_item_embedded_at"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.content_type.model} {self.object_id}"


class Tag(models.Model):
    """A topic label; editorial (from the host) or suggested by the embedder."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True, help_text="Helps automatic tag suggestion.")
    embedding = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ItemTag(models.Model):
    """An item's tag, with where it came from and how strongly it applies."""

    class Source(models.TextChoices):
        EDITORIAL = "editorial", "Editorial"
        AUTOMATIC = "automatic", "Automatic"

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        PENDING = "pending", "Pending review"
        REJECTED = "rejected", "Rejected"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="item_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="item_tags")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.EDITORIAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    weight = models.FloatField(default=1.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "tag"], name="recommender_itemtag_unique")]
        indexes = [models.Index(fields=["source", "status"], name="rec_itemtag_src_status")]

    def __str__(self) -> str:
        return f"{self.item} · {self.tag} ({self.source})"
