"""App configuration: connects signals and system checks, nothing else at import time."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    """The reusable recommender app."""

    name = "recommender"
    verbose_name = "Recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at module level: they import models, which need the app registry.
        from recommender import caching, checks, tasks  # noqa: F401  (checks register themselves)
        from recommender.serving import model_store
        from recommender.tracking import interests, receivers

        caching.connect()  # rules, tuning, item and tag saves -> a new site-wide cache generation
        receivers.connect()  # content saves -> Items, logins -> merged histories
        tasks.connect()  # Item content changes -> embedding tasks, tracked events -> interest profiles
        interests.connect()  # merged logins -> rebuilt interest profiles
        model_store.connect()  # activations -> every serving process reloads
