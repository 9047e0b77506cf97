"""django-recommender: personalized recommendations for Django content.

Where things live (dependencies run downwards only; ``make lint`` checks it):

- ``api``, ``templatetags``, ``admin``, ``management``: the front ends, thin.
- ``tasks``: the Celery tasks, thin wrappers; the only module that imports Celery.
- ``serving``: what a reader sees: the loaded model, candidates, rules, ranking,
  ``serving.recommend.recommend()``.
- ``training``: embedding, training runs, the model registry and its gate, artifacts, upkeep.
- ``tracking``: events, identities' merge, content mirrored into Items, interest
  profiles, feedback, a person's own data.
- top level: models, settings (``conf``), run-time ``tuning``, the content
  ``registry``, the ``adapter``, ``caching`` and the app's ``signals``.
- ``ml``: plain PyTorch, no Django; trainable from a script.

This module stays import-light on purpose: ``recommender.ml`` must be importable
without Django, and Python imports this package first.
"""

from typing import Any

__version__ = "0.1.0"


def register(model: Any, **options: Any) -> Any:
    """Register a host content model; see :func:`recommender.registry.register`."""
    from recommender.registry import register as _register  # Django-free import of recommender.ml

    return _register(model, **options)
