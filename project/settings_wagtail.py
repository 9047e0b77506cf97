"""Settings for the Wagtail demo site: the news demo's settings with Wagtail and its pages.

``manage.py <command> --settings=project.settings_wagtail``; the database is a file of
its own (``var/wagtail.sqlite3``), so the two demos never share one. ``DATABASE_URL``
still switches to PostgreSQL.
"""

import os

from project.settings import *  # noqa: F403
from project.settings import DATABASES, INSTALLED_APPS, RECOMMENDER, VAR_DIR

INSTALLED_APPS = [
    *(app for app in INSTALLED_APPS if app != "project.news"),
    "wagtail.contrib.forms",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "recommender.contrib.wagtail",
    "project.wagtail_news",
]

ROOT_URLCONF = "project.urls_wagtail"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

if not os.environ.get("DATABASE_URL"):
    DATABASES = {
        "default": {
            **DATABASES["default"],
            "NAME": os.environ.get("SQLITE_PATH", VAR_DIR / "wagtail.sqlite3"),
            "TEST": {"NAME": str(VAR_DIR / "test-wagtail-db.sqlite3")},
        }
    }

WAGTAIL_SITE_NAME = "The Daily Demo (Wagtail)"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

RECOMMENDER = {
    **RECOMMENDER,
    "ADAPTER": "recommender.contrib.wagtail.adapter.WagtailRecommenderAdapter",
    "PLACEMENTS": ["default", "home", "article", "section"],
}
RECOMMENDER_WAGTAIL = {"PAGE_TYPES": ["wagtail_news.ArticlePage"]}
