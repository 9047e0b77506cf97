"""The interest profile (tag affinities per identity) and the tag graph (tag-tag relatedness).

An identity's affinity for a tag is the sum over its events on items with that
tag of ``event weight * tag weight * 0.5^(age / INTEREST_HALF_LIFE_DAYS)``. It is
kept current cheaply: when tracking stores events, the profile is decayed to now
and only the new events are added; :func:`recompute_interests` rebuilds profiles
from scratch for a periodic task.

The tag graph blends co-occurrence of tags on the same items with the similarity
of the tag names' embeddings; it powers "related topics" and the diversity step
for items without an embedding.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from recommender import signals
from recommender.conf import recommender_settings
from recommender.identity import Identity
from recommender.ml.embedder import get_embedder, vector_from_bytes, vector_to_bytes
from recommender.models import Interaction, ItemTag, Profile, Tag, TagRelation
from recommender.tuning import get_tuning

logger = logging.getLogger(__name__)

RECOMPUTE_EVENTS = 1000  # events read per identity by a full recompute
NAME_SIMILARITY_FLOOR = 0.3  # name similarity below this says nothing about relatedness


# -- interest profile ----------------------------------------------------------


def profile_for(identity: Any, *, create: bool = False) -> Profile | None:
    """The identity's profile row (created on demand)."""
    if identity is None or not identity.is_known:
        return None
    profile = Profile.objects.for_identity(identity).first()
    if profile is None and create:
        fields = (
            {"user_id": identity.user_id}
            if identity.user_id is not None
            else {"visitor_id": identity.visitor_id}
        )
        profile, _ = Profile.objects.get_or_create(**fields)
    return profile


def profile_affinities(identity: Any) -> dict[str, float]:
    """Tag slug -> affinity, as stored (empty for an unknown identity or one that opted out)."""
    profile = profile_for(identity)
    if profile is None or not profile.personalization_enabled:
        return {}
    return {slug: float(v) for slug, v in (profile.interests or {}).items()}


def interest_profile(identity: Any, limit: int = 20) -> list[tuple[Tag, float]]:
    """The identity's strongest tags, strongest first, affinity scaled so the top tag is 1."""
    affinities = profile_affinities(identity)
    top = sorted(affinities.items(), key=lambda kv: -kv[1])[:limit]
    if not top or top[0][1] <= 0:
        return []
    tags = Tag.objects.in_bulk([slug for slug, _ in top], field_name="slug")
    return [(tags[slug], round(value / top[0][1], 4)) for slug, value in top if slug in tags]


def _contributions(events: Iterable[tuple[int, str, datetime]], now: datetime) -> dict[str, float]:
    """Affinity added by these (item, event type, time) events, decayed to ``now``."""
    events = list(events)
    if not events:
        return {}
    return _affinity(events, _item_tags({item for item, _, _ in events}), now)


def _item_tags(item_ids: Iterable[int]) -> dict[int, list[tuple[str, float]]]:
    """Accepted (tag slug, weight) pairs of each item (one query)."""
    tags: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for item_id, slug, weight in ItemTag.objects.filter(
        item_id__in=set(item_ids), status=ItemTag.Status.ACCEPTED
    ).values_list("item_id", "tag__slug", "weight"):
        tags[item_id].append((slug, weight))
    return tags


def _affinity(
    events: Iterable[tuple[int, str, datetime]], tags: dict[int, list[tuple[str, float]]], now: datetime
) -> dict[str, float]:
    weights = get_tuning().event_types
    half_life = float(recommender_settings.INTEREST_HALF_LIFE_DAYS) * 86400.0
    out: Counter[str] = Counter()
    for item_id, event_type, at in events:
        weight = weights.get(event_type, 0.0)
        if weight == 0 or item_id not in tags:
            continue
        decay = 0.5 ** (max((now - at).total_seconds(), 0.0) / half_life)
        for slug, tag_weight in tags[item_id]:
            out[slug] += weight * tag_weight * decay
    return dict(out)


def _store(profile: Profile, affinities: dict[str, float], now: datetime, *, save: bool = True) -> Profile:
    size = int(recommender_settings.INTEREST_PROFILE_SIZE)
    kept = sorted(((s, v) for s, v in affinities.items() if v > 1e-6), key=lambda kv: -kv[1])[:size]
    profile.interests = {slug: round(value, 6) for slug, value in kept}
    profile.interests_updated_at = now
    if save:
        profile.save(update_fields=["interests", "interests_updated_at"])
    return profile


def _events(identity: Any):
    return Interaction.objects.for_identity(identity)


def recompute_profile(identity: Any) -> Profile | None:
    """Rebuild one identity's profile from its last RECOMPUTE_EVENTS events."""
    profile = profile_for(identity, create=True)
    if profile is None:
        return None
    now = timezone.now()
    events = _events(identity).order_by("-timestamp").values_list("item_id", "event_type", "timestamp")
    return _store(profile, _contributions(events[:RECOMPUTE_EVENTS], now), now)


def update_interests(identity: Any) -> Profile | None:
    """Decay the stored profile to now and add the events stored since its last update (cheap)."""
    profile = profile_for(identity, create=True)
    if profile is None:
        return None
    if profile.interests_updated_at is None:
        return recompute_profile(identity)
    now = timezone.now()
    since = profile.interests_updated_at
    half_life = float(recommender_settings.INTEREST_HALF_LIFE_DAYS) * 86400.0
    decay = 0.5 ** (max((now - since).total_seconds(), 0.0) / half_life)
    affinities = Counter({slug: float(v) * decay for slug, v in (profile.interests or {}).items()})
    new = _events(identity).filter(created_at__gt=since).values_list("item_id", "event_type", "timestamp")
    affinities.update(_contributions(new[:RECOMPUTE_EVENTS], now))
    return _store(profile, dict(affinities), now)


def _key(user_id: int | None, visitor_id: str) -> tuple[str, int | str | None]:
    return ("u", user_id) if user_id is not None else ("v", visitor_id)


def update_interests_many(identities: Sequence[Any]) -> int:
    """``update_interests`` for many identities in a handful of queries, not four each.

    A bulk import or a server-side batch names hundreds of readers: their profiles are
    read in one query, their new events in one, those items' tags in one, and written
    back with one ``bulk_update``. A reader without a profile yet gets the full
    recompute, as in ``update_interests``. Returns how many profiles were updated.
    """
    identities = [i for i in identities if i is not None and i.is_known]
    users = {i.user_id for i in identities if i.user_id is not None}
    visitors = {i.visitor_id for i in identities if i.user_id is None}
    profiles = {
        _key(p.user_id, p.visitor_id): p
        for p in Profile.objects.filter(Q(user_id__in=users) | Q(user__isnull=True, visitor_id__in=visitors))
    }
    fresh = [
        i
        for i in identities
        if getattr(profiles.get(_key(i.user_id, i.visitor_id)), "interests_updated_at", None) is None
    ]
    for identity in fresh:
        recompute_profile(identity)
    current = [p for p in profiles.values() if p.interests_updated_at is not None]
    if not current:
        return len(fresh)
    now = timezone.now()
    new: dict[tuple, list[tuple[int, str, datetime]]] = defaultdict(list)
    rows = Interaction.objects.filter(
        Q(user_id__in=users) | Q(user__isnull=True, visitor_id__in=visitors),
        created_at__gt=min(p.interests_updated_at for p in current),
    ).values_list("user_id", "visitor_id", "item_id", "event_type", "timestamp", "created_at")
    for user_id, visitor_id, item_id, event_type, at, created in rows.iterator(chunk_size=5000):
        profile = profiles.get(_key(user_id, visitor_id))
        if profile is not None and created > profile.interests_updated_at:
            new[_key(user_id, visitor_id)].append((item_id, event_type, at))
    tags = _item_tags({item for events in new.values() for item, _, _ in events})
    half_life = float(recommender_settings.INTEREST_HALF_LIFE_DAYS) * 86400.0
    for profile in current:
        decay = 0.5 ** (max((now - profile.interests_updated_at).total_seconds(), 0.0) / half_life)
        affinities = Counter({slug: float(v) * decay for slug, v in (profile.interests or {}).items()})
        events = new.get(_key(profile.user_id, profile.visitor_id), [])
        affinities.update(_affinity(events[-RECOMPUTE_EVENTS:], tags, now))
        _store(profile, dict(affinities), now, save=False)
    _save_profiles(current)
    return len(fresh) + len(current)


def _save_profiles(profiles: list[Profile]) -> None:
    """Write back many profiles' interests at once.

    PostgreSQL: one single-row UPDATE per profile, in id order, sent in one round
    trip, which runs as one transaction. ``bulk_update``'s one big ``CASE`` statement
    costs more to build than to run, and would lock the rows in its plan's order, so
    two batches naming the same readers could deadlock.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        Profile.objects.bulk_update(profiles, ["interests", "interests_updated_at"], batch_size=500)
        return
    quote = connection.ops.quote_name
    meta = Profile._meta
    statement = (
        f"UPDATE {quote(meta.db_table)} SET {quote(meta.get_field('interests').column)} = %s::jsonb, "
        f"{quote(meta.get_field('interests_updated_at').column)} = %s WHERE {quote(meta.pk.column)} = %s"
    )
    ordered = sorted(profiles, key=lambda p: p.pk)
    params: list[Any] = []
    for profile in ordered:
        params += [json.dumps(profile.interests), profile.interests_updated_at, profile.pk]
    with connection.cursor() as cursor:
        cursor.execute("; ".join([statement] * len(ordered)), params)


def recompute_interests(*, days: int = 90) -> int:
    """Rebuild the profile of every identity active in the last ``days`` days (a periodic task)."""
    since = timezone.now() - timedelta(days=days)
    recent = Interaction.objects.filter(timestamp__gte=since)
    user_ids = recent.filter(user__isnull=False).values_list("user_id", flat=True).distinct()
    identities = [Identity(user_id=u) for u in user_ids]
    identities += [
        Identity(user_id=None, visitor_id=v)
        for v in recent.filter(user__isnull=True).values_list("visitor_id", flat=True).distinct()
    ]
    for identity in identities:
        recompute_profile(identity)
    return len(identities)


# -- tag graph -------------------------------------------------------------------


def related_tags(tag: Tag | int, limit: int = 10) -> list[tuple[Tag, float]]:
    """The tags most related to this one, strongest first."""
    tag_id = tag.pk if isinstance(tag, Tag) else int(tag)
    relations = (
        TagRelation.objects.filter(source_id=tag_id).select_related("target").order_by("-score")[:limit]
    )
    return [(r.target, r.score) for r in relations]


def tag_relatedness(tag_ids: Collection[int]) -> dict[tuple[int, int], float]:
    """(a, b) -> relatedness among these tags, for the diversity step (one query)."""
    rows = TagRelation.objects.filter(source_id__in=list(tag_ids), target_id__in=list(tag_ids))
    return {(a, b): score for a, b, score in rows.values_list("source_id", "target_id", "score")}


def _name_similarity(tags: list[Tag]) -> np.ndarray | None:
    """Cosine similarity of tag names (with descriptions), embedding tags that have no vector yet."""
    try:
        embedder = get_embedder(recommender_settings.EMBEDDER, recommender_settings.EMBED_DEVICE)
        dim = embedder.dimension
        missing = [t for t in tags if not t.embedding or len(bytes(t.embedding)) != 4 * dim]
        if missing:
            vectors = embedder.encode(
                [f"{t.name}: {t.description}" if t.description else t.name for t in missing]
            )
            for tag, vector in zip(missing, vectors, strict=True):
                tag.embedding = vector_to_bytes(vector)
            Tag.objects.bulk_update(missing, ["embedding"])
        matrix = np.stack([vector_from_bytes(bytes(t.embedding), dim) for t in tags])
    except Exception:
        logger.exception("tag-name embeddings unavailable; the tag graph uses co-occurrence only")
        return None
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return matrix @ matrix.T


def rebuild_tag_graph(*, use_embeddings: bool = True) -> int:
    """Recompute every ``TagRelation``; returns how many relations were stored.

    score = ½·co-occurrence (cosine of the tags' item sets, active items, accepted tags)
    + ½·name similarity (0 below NAME_SIMILARITY_FLOOR); co-occurrence alone when
    embeddings are off or unavailable. Each tag keeps its TAG_GRAPH_NEIGHBOURS best.
    """
    tags = list(Tag.objects.order_by("pk"))
    if len(tags) < 2:
        TagRelation.objects.all().delete()
        return 0
    position = {t.pk: n for n, t in enumerate(tags)}
    per_item: dict[int, set[int]] = defaultdict(set)
    for item_id, tag_id in ItemTag.objects.filter(
        status=ItemTag.Status.ACCEPTED, item__is_active=True
    ).values_list("item_id", "tag_id"):
        per_item[item_id].add(position[tag_id])
    counts = np.zeros(len(tags))
    pairs = np.zeros((len(tags), len(tags)))
    for members in per_item.values():
        idx = sorted(members)
        counts[idx] += 1
        for a in idx:
            for b in idx:
                if a != b:
                    pairs[a, b] += 1
    cooccurrence = pairs / np.maximum(np.sqrt(np.outer(counts, counts)), 1.0)
    similarity = _name_similarity(tags) if use_embeddings else None
    if similarity is None:
        similarity = np.zeros_like(cooccurrence)
        score = cooccurrence
    else:
        similarity = np.where(similarity >= NAME_SIMILARITY_FLOOR, similarity, 0.0)
        score = 0.5 * cooccurrence + 0.5 * similarity
    np.fill_diagonal(score, 0.0)
    keep = int(recommender_settings.TAG_GRAPH_NEIGHBOURS)
    relations = []
    for a in range(len(tags)):
        for b in np.argsort(-score[a], kind="stable")[:keep]:
            if score[a, b] <= 0:
                break
            relations.append(
                TagRelation(
                    source=tags[a],
                    target=tags[b],
                    cooccurrence=round(float(cooccurrence[a, b]), 6),
                    similarity=round(float(similarity[a, b]), 6),
                    score=round(float(score[a, b]), 6),
                )
            )
    with transaction.atomic():
        TagRelation.objects.all().delete()
        TagRelation.objects.bulk_create(relations)
    return len(relations)


# -- receivers -------------------------------------------------------------------


def _on_identity_merged(sender: Any, user_id: int, visitor_id: str = "", **kwargs: Any) -> None:
    """A visitor's events now belong to a user: rebuild that user's profile from them."""
    try:
        recompute_profile(Identity(user_id=user_id))
    except Exception:
        logger.exception("could not rebuild the interest profile of user %s", user_id)


def connect() -> None:
    """Connect the receivers (called from ``RecommenderConfig.ready``)."""
    signals.identity_merged.connect(
        _on_identity_merged, sender=Interaction, dispatch_uid="recommender_interests_merge"
    )
