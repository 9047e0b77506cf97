"""What both demos' seeding shares: the accounts, deferred embedding and the synthetic events.

The news demo (``project.news``) and the Wagtail demo (``project.wagtail_news``) store the
same synthetic platform as different content models; everything here is model-agnostic,
so neither imports the other's app (only one of them is installed at a time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType

from project.news.synthetic import Platform
from recommender.models import Item
from recommender.signals import item_content_changed
from recommender.tasks import on_item_content_changed
from recommender.tracking.events import EventInput, ingest

READER_PASSWORD = "demo-pass-123"
ADMIN_USERNAME, ADMIN_PASSWORD = "admin", "admin-pass-123"


@contextmanager
def embedding_deferred() -> Iterator[None]:
    """Mirror content without embedding it inline; ``manage.py recommender_embed`` does it afterwards.

    With eager Celery (the demos' default) the embed task would run inside the seed
    and take minutes on a small CPU; ``make demo`` embeds as its own step instead.
    """
    uid = "recommender.embedding"
    item_content_changed.disconnect(on_item_content_changed, dispatch_uid=uid)
    try:
        yield
    finally:
        item_content_changed.connect(on_item_content_changed, dispatch_uid=uid)


def ensure_admin() -> Any:
    """The demo's superuser, with its known password."""
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username=ADMIN_USERNAME, defaults={"email": "admin@example.com"})
    admin.is_staff = admin.is_superuser = True
    admin.set_password(ADMIN_PASSWORD)
    admin.save()
    return admin


def ensure_readers(platform: Platform) -> list:
    """The platform's readers as users, in its order (existing accounts are kept)."""
    User = get_user_model()
    password = make_password(READER_PASSWORD)  # hashed once: hashing 300 times would take minutes
    User.objects.bulk_create(
        [User(username=u.username, password=password) for u in platform.users], ignore_conflicts=True
    )
    by_name = {u.username: u for u in User.objects.filter(username__in=[u.username for u in platform.users])}
    return [by_name[u.username] for u in platform.users]


def store_events(platform: Platform, objects: Sequence[Any], users: Sequence[Any]) -> int:
    """Ingest the platform's events; ``objects[k]`` is the stored content of its article k."""
    if not objects:
        return 0
    content_type = ContentType.objects.get_for_model(type(objects[0]))
    item_of = dict(
        Item.objects.filter(
            content_type=content_type, object_id__in=[str(o.pk) for o in objects]
        ).values_list("object_id", "pk")
    )
    events = (
        EventInput(
            item_id=item_of[str(objects[e.article].pk)],
            event_type=e.event_type,
            user_id=users[e.user].pk,
            value=e.value,
            timestamp=e.timestamp,
            event_id=e.event_id,
            session_id=e.session_id,
            placement=e.placement,
        )
        for e in platform.events
    )
    return ingest(events, batch_size=500).created
