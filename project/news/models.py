"""Demo content: news articles in topics."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Topic(models.Model):
    """A news topic ("Football", "Climate"); the article's tags."""

    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=90, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("tag", args=[self.slug])


class ArticleQuerySet(models.QuerySet):
    """The lists the demo's pages show."""

    def published(self) -> ArticleQuerySet:
        """Public articles: not drafts, published in the past."""
        return self.filter(is_draft=False, published_at__lte=timezone.now())


class Article(models.Model):
    """A news article; ``published_at`` in the future or ``is_draft`` keeps it out of recommendations."""

    title = models.CharField(max_length=250)
    slug = models.SlugField(max_length=270, unique=True)
    summary = models.TextField(blank=True)
    body = models.TextField(blank=True)
    tags = models.ManyToManyField(Topic, related_name="articles", blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    is_draft = models.BooleanField(default=False)
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="continuations",
        help_text="The part or story this article continues (series, follow-ups).",
    )

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("article", args=[self.slug])

    @property
    def is_public(self) -> bool:
        return not self.is_draft and self.published_at is not None and self.published_at <= timezone.now()
