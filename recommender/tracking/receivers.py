"""The receivers that keep Items and identities current: content saves, deletes, tag changes, logins.

Connected explicitly with ``sender=`` (django-celery-beat style): :func:`connect`
from ``AppConfig.ready`` for the models registered so far and the login merge;
later ``register()`` calls reach :func:`connect_model` through the
``content_registered`` signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from recommender.adapter import get_adapter
from recommender.registry import ContentConfig, registry
from recommender.signals import content_registered, content_unregistered
from recommender.tracking import sync
from recommender.tracking.events import merge_visitor_into_user

logger = logging.getLogger(__name__)


def connect() -> None:
    """Connect the receivers of every model registered so far, of later registrations, and the login merge."""
    for config in registry.configs():
        connect_model(config)
    content_registered.connect(_registered, dispatch_uid="recommender.registered")
    content_unregistered.connect(_unregistered, dispatch_uid="recommender.unregistered")
    user_logged_in.connect(_merge_visitor_on_login, sender=get_user_model(), dispatch_uid="recommender.login")


def connect_model(config: ContentConfig) -> None:
    """Keep the Items of one registered model in sync with its saves, deletes and tag changes."""
    uid = f"recommender.sync.{config.label}"
    post_save.connect(_object_saved, sender=config.model, dispatch_uid=uid)
    post_delete.connect(_object_deleted, sender=config.model, dispatch_uid=uid)
    through = _tags_through(config)
    if through is not None:
        m2m_changed.connect(_tags_changed, sender=through, dispatch_uid=uid)


def _tags_through(config: ContentConfig) -> type | None:
    """The through model of a many-to-many ``tags``; None until it is resolved (register() at import time).

    Never connect with ``sender=None``: that would listen to every many-to-many in the project.
    """
    field = config.tags_m2m_field()
    through = field.remote_field.through if field is not None else None
    return through if isinstance(through, type) else None


def _registered(sender: type, config: ContentConfig, **kwargs: Any) -> None:
    connect_model(config)


def _unregistered(sender: type, config: ContentConfig, **kwargs: Any) -> None:
    disconnect_model(config)


def disconnect_model(config: ContentConfig) -> None:
    """Stop following one model (it was unregistered, or registered again with other options)."""
    uid = f"recommender.sync.{config.label}"
    post_save.disconnect(sender=config.model, dispatch_uid=uid)
    post_delete.disconnect(sender=config.model, dispatch_uid=uid)
    through = _tags_through(config)
    if through is not None:
        m2m_changed.disconnect(sender=through, dispatch_uid=uid)


def _guarded(action: str, instance: Any, work: Callable[[], Any]) -> None:
    """Run a sync step in a savepoint; a failure is logged, never breaks the host's save.

    ``recommender_sync`` repairs whatever a failed step left stale.
    """
    try:
        with transaction.atomic():
            work()
    except Exception:
        logger.exception("recommender: could not %s the Item of %r", action, instance)


def _object_saved(sender: type, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata: the related rows may not exist yet; recommender_sync catches up
        return
    _guarded("sync", instance, lambda: sync.sync_object(instance))


def _object_deleted(sender: type, instance: Any, **kwargs: Any) -> None:
    _guarded("delete", instance, lambda: sync.remove_object(instance))


def _tags_changed(
    sender: type, instance: Any, action: str, reverse: bool, model: type, pk_set: Any, **kwargs: Any
) -> None:
    """Resync the content objects whose tags changed, from either side of the relation."""
    if not reverse:
        if action in ("post_add", "post_remove", "post_clear"):
            _guarded("sync", instance, lambda: sync.sync_object(instance))
        return
    # Reverse side (topic.articles.add(...)): ``model`` is the content model, ``instance`` the tag object.
    if action == "pre_clear":
        field = registry.get_config(model).tags_m2m_field()
        related = model._default_manager.filter(**{field.name: instance})
        instance._recommender_cleared_pks = list(related.values_list("pk", flat=True))
    elif action in ("post_add", "post_remove", "post_clear"):
        pks = pk_set if action != "post_clear" else getattr(instance, "_recommender_cleared_pks", [])
        for obj in model._default_manager.filter(pk__in=list(pks or ())):
            _guarded("sync", obj, lambda obj=obj: sync.sync_object(obj))


def _merge_visitor_on_login(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    """Move the visitor's anonymous history into the account, then give the browser a new visitor id.

    The fresh id means that after a logout, the next anonymous browsing on this
    device starts a history of its own instead of extending the account's.
    """
    visitor_id = getattr(request, "recommender_visitor_id", "") if request is not None else ""
    if not visitor_id:
        return
    merge_visitor_into_user(visitor_id, user)
    request.recommender_visitor_id = get_adapter().new_visitor_id()
