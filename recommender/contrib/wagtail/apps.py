"""App configuration: registers the chosen page types and connects the page receivers."""

from django.apps import AppConfig


class RecommenderWagtailConfig(AppConfig):
    """Wagtail pages as recommender items (an optional app; needs ``recommender`` installed first)."""

    name = "recommender.contrib.wagtail"
    label = "recommender_wagtail"
    verbose_name = "Recommender for Wagtail"

    def ready(self) -> None:
        # Imported here: they import Wagtail's and the recommender's models.
        from recommender.contrib.wagtail import checks, pages, receivers  # noqa: F401  (checks register)

        pages.register_pages()
        receivers.connect()
