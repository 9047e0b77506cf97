"""The app's own signals, so the parts that write need not know who listens.

- ``content_registered`` / ``content_unregistered`` (sender=the content model,
  ``config: ContentConfig``): sent by :func:`recommender.register` and
  ``registry.unregister``; :mod:`recommender.tracking.receivers` connects the model's
  save, delete and tag receivers.
- ``item_content_changed`` (sender=Item, ``item_ids: list[int]``): sent on commit
  after the registry created or updated Items whose content hash changed.
- ``events_ingested`` (sender=Interaction, ``user_ids: set[int]``,
  ``visitor_ids: set[str]``, ``item_ids: set[int]``): sent on commit after tracking
  stored new events.
- ``identity_merged`` (sender=Interaction, ``user_id: int``, ``visitor_id: str``):
  sent on commit after a visitor's history was moved into an account at login.
- ``model_activated`` (sender=ModelVersion, ``version: ModelVersion | None``): sent on
  commit after the served version changed (activation or rollback).

Receivers are connected explicitly, from ``AppConfig.ready``.
"""

from django.dispatch import Signal

content_registered = Signal()
content_unregistered = Signal()
item_content_changed = Signal()
events_ingested = Signal()
identity_merged = Signal()
model_activated = Signal()
