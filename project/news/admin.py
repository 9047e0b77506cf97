"""Admin for the demo content, so editors can write and unpublish articles."""

from django.contrib import admin

from project.news.models import Article, Topic


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    """Topics are the articles' editorial tags."""

    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    """Articles; saving one updates its recommender Item through the registry's signals."""

    list_display = ["title", "published_at", "is_draft", "author"]
    list_filter = ["is_draft", "tags"]
    search_fields = ["title", "summary"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["tags"]
    raw_id_fields = ["author", "previous"]
