"""App configuration: connects signals and system checks, nothing else at import time."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    """The reusable recommender app."""

    name = "recommender"
    verbose_name = "Recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from recommender import checks, signals  # noqa: F401  (registers checks and receivers)

        signals.connect()
        from recommender.training.embedding import connect_receivers  # workers: content saves -> embedding

        connect_receivers()
        from recommender.tracking import interests  # serving: tracked events -> interest profiles

        interests.connect()
        from recommender import caching  # noqa: F401  (rules/tuning/item saves -> cache generation)
