"""django-recommender: personalized recommendations for Django content.

This module stays import-light on purpose: ``recommender.ml`` must be importable
without Django, and Python imports this package first.
"""

from typing import Any

__version__ = "0.1.0"


def register(model: Any, **options: Any) -> Any:
    """Register a host content model; see :func:`recommender.registry.register`."""
    from recommender.registry import register as _register  # Django-free import of recommender.ml

    return _register(model, **options)
