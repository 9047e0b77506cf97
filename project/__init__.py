"""The demo host site: a small news platform that uses django-recommender."""

from project.celery import app as celery_app

__all__ = ["celery_app"]
