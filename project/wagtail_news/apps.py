"""App configuration of the Wagtail demo pages."""

from django.apps import AppConfig


class WagtailNewsConfig(AppConfig):
    """Home, section and article pages of the Wagtail demo."""

    name = "project.wagtail_news"
    label = "wagtail_news"
    verbose_name = "Wagtail news (demo)"
    default_auto_field = "django.db.models.BigAutoField"
