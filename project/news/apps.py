"""App config of the demo news app; registers Article with the recommender."""

from django.apps import AppConfig


class NewsConfig(AppConfig):
    """Demo news app."""

    name = "project.news"
    label = "news"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import recommender
        from project.news.models import Article

        recommender.register(
            Article,
            text=("title", "summary", "body"),
            tags="tags",
            published="published_at",
            is_public="is_public",
            title="title",
            url="get_absolute_url",
        )
