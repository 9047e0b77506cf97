"""Which host models are content, and how to read their text, tags and state.

Like Wagtail's ``search_fields`` but declared from outside the model, so any model
qualifies without inheritance::

    recommender.register(Article, text=("title", "summary", "body"), tags="tags",
                         published="published_at", is_public="is_public")

Every option names a field, attribute, property or method of the model, or is a
callable taking the object. How the values are turned into an ``Item`` is the
adapter's job (:mod:`recommender.adapter`); keeping the ``Item`` current is
:mod:`recommender.tracking.sync`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from recommender.signals import content_registered, content_unregistered

Accessor = str | Callable[[Any], Any]


@dataclass(frozen=True)
class ContentConfig:
    """How one registered model is read; ``None`` means "not provided" (the adapter picks a default)."""

    model: type[models.Model]
    text: tuple[Accessor, ...]
    tags: Accessor | None = None
    published: Accessor | None = None
    is_public: Accessor | None = None
    title: Accessor | None = None
    url: Accessor | None = None

    @property
    def label(self) -> str:
        return self.model._meta.label

    def tags_m2m_field(self) -> models.ManyToManyField | None:
        """The many-to-many field named by ``tags``, if it is one (its changes must resync)."""
        if not isinstance(self.tags, str):
            return None
        try:
            field = self.model._meta.get_field(self.tags)
        except FieldDoesNotExist:
            return None
        return field if isinstance(field, models.ManyToManyField) else None


def resolve(obj: Any, accessor: Accessor | None) -> Any:
    """The value an option names on ``obj``: a callable's result, a method's result or an attribute.

    A related manager (many-to-many) is returned as is: it is callable, but calling
    it means something else.
    """
    if accessor is None:
        return None
    if callable(accessor):
        return accessor(obj)
    value = getattr(obj, accessor)
    if callable(value) and not isinstance(value, models.Manager):
        return value()
    return value


class ContentRegistry:
    """The registered host models and their :class:`ContentConfig`."""

    def __init__(self) -> None:
        self._configs: dict[type[models.Model], ContentConfig] = {}

    def register(
        self,
        model: type[models.Model],
        *,
        text: Accessor | Sequence[Accessor] = ("title",),
        tags: Accessor | None = None,
        published: Accessor | None = None,
        is_public: Accessor | None = None,
        title: Accessor | None = None,
        url: Accessor | None = None,
    ) -> type[models.Model]:
        """Register (or re-register, replacing the options) a content model and connect its sync receivers."""
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise ImproperlyConfigured(f"recommender.register() needs a Django model class, got {model!r}.")
        if model._meta.abstract:
            raise ImproperlyConfigured(f"recommender.register(): {model.__name__} is abstract.")
        text_accessors = (text,) if isinstance(text, str) or callable(text) else tuple(text)
        if not text_accessors:
            raise ImproperlyConfigured(f"recommender.register({model.__name__}): 'text' names nothing.")
        options = {
            "text": text_accessors,
            "tags": tags,
            "published": published,
            "is_public": is_public,
            "title": title,
            "url": url,
        }
        for option, value in options.items():
            for accessor in value if option == "text" else (value,):
                _check_accessor(model, option, accessor)
        config = ContentConfig(model=model, **options)
        previous = self._configs.get(model)
        if previous is not None:  # its tags relation may differ from the new one
            content_unregistered.send(sender=model, config=previous)
        self._configs[model] = config
        content_registered.send(sender=model, config=config)
        return model

    def unregister(self, model: type[models.Model]) -> None:
        """Forget a model and disconnect its receivers (mostly for tests)."""
        config = self._configs.pop(model, None)
        if config is not None:
            content_unregistered.send(sender=model, config=config)

    def get_config(self, model: type[models.Model]) -> ContentConfig:
        """The config of a registered model (or of the concrete model behind a proxy)."""
        config = self._configs.get(model) or self._configs.get(model._meta.concrete_model)
        if config is None:
            raise LookupError(f"{model._meta.label} is not registered with the recommender.")
        return config

    def is_registered(self, model: type[models.Model]) -> bool:
        return model in self._configs or model._meta.concrete_model in self._configs

    def registered_models(self) -> list[type[models.Model]]:
        return list(self._configs)

    def configs(self) -> list[ContentConfig]:
        return list(self._configs.values())


def _check_accessor(model: type[models.Model], option: str, accessor: Any) -> None:
    """Fail at registration, not at the first save, when an option names nothing."""
    if accessor is None or callable(accessor):
        return
    if not isinstance(accessor, str):
        raise ImproperlyConfigured(
            f"recommender.register({model.__name__}): {option}={accessor!r} must be a field, attribute or "
            "method name, or a callable taking the object."
        )
    if hasattr(model, accessor):
        return
    try:
        model._meta.get_field(accessor)
        return
    except FieldDoesNotExist:
        pass
    raise ImproperlyConfigured(
        f"recommender.register({model.__name__}): {option}={accessor!r} is not a field, attribute or method "
        f"of {model._meta.label}."
    )


registry = ContentRegistry()
register = registry.register
get_config = registry.get_config
is_registered = registry.is_registered
registered_models = registry.registered_models
