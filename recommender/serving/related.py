"""Non-personal lists: items similar to one item, trending items, fresh items.

They share the pipeline's tail (rules, blend, diversity, log) through
:func:`recommender.serving.recommend.serve`, so editorial rules and blocks hold
everywhere. With an identity, its "not interested" and disliked items are left
out, items like them moved down and items like its liked ones up (and, for
``similar``, what it has seen is left out); without one, a list is cached once
for everybody. ``identity`` may also be the request itself, so that the adapter's
visibility (site, access rules) applies as it does in ``recommend()``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from recommender.caching import cache, generation, identity_key, list_key
from recommender.serving import model_store
from recommender.serving.candidates import (
    Candidate,
    content_similar,
    cooccurrence_candidates,
    fresh_candidates,
    model_similar,
    trending_candidates,
)
from recommender.serving.recommend import (
    Recommendations,
    last_event_id,
    load_history,
    prepare,
    safe_fallback,
    serve,
    visibility_key,
)
from recommender.serving.rules import editorial_plan, personal_exclusions
from recommender.tracking.reactions import current_reactions

logger = logging.getLogger(__name__)

Tiers = tuple[list[list[Candidate]], bool]  # candidate tiers, whether the model produced them
Render = Callable[[Recommendations], Any] | None  # a module-level function: its name keys the cache


def similar(
    item: Any,
    *,
    limit: int = 10,
    identity: Any = None,
    placement: str = "article",
    exclude: Iterable[int] = (),
    render: Render = None,
) -> Any:
    """Items like ``item`` (an Item or its id): the model's item space and its text, together.

    The model's neighbours are what the same readers read; the text's are what is about
    the same thing. Each scores in [0, 1] and an item's score is their mean (0 where a
    source did not propose it), so a related list is read together and stays on the
    item's subject. Without a model or an embedding: text, else co-occurrence. With an
    identity, what it has already seen is left out (when EXCLUDE_SEEN). With
    ``render``, returns and caches ``render(list)`` (see ``recommend_rendered``).
    """

    def build(loaded: model_store.LoadedModel | None, excluded: set[int], k: int, context_id: int) -> Tiers:
        by_model = model_similar(loaded, context_id, k=k, exclude=excluded) if loaded else []
        by_text = content_similar([context_id], k=k, exclude=excluded)
        if not by_model and not by_text:
            by_text = cooccurrence_candidates(context_id, k=k, exclude=excluded)
        merged: dict[int, Candidate] = {}
        for source in (by_model, by_text):
            weight = 0.5 if by_model and by_text else 1.0
            for c in source:
                if c.item_id in merged:
                    merged[c.item_id].score += weight * c.score
                else:
                    merged[c.item_id] = Candidate(c.item_id, weight * c.score, c.reason, c.because)
        found = sorted(merged.values(), key=lambda c: (-c.score, c.item_id))
        return [found, trending_candidates(k=k, exclude=excluded)], bool(by_model)

    return _related(
        "similar", build, identity, placement, limit,
        context=item, exclude=exclude, exclude_seen=True, render=render,
    )  # fmt: skip


def trending(
    *,
    limit: int = 10,
    window_hours: float | None = None,
    identity: Any = None,
    placement: str = "default",
    exclude: Iterable[int] = (),
    render: Render = None,
) -> Any:
    """The most engaged-with items (decayed score, or counts in the last ``window_hours``), unread ones."""

    def build(loaded: model_store.LoadedModel | None, excluded: set[int], k: int, context_id: int) -> Tiers:
        return [
            trending_candidates(k=k, exclude=excluded, window_hours=window_hours),
            fresh_candidates(k=k, exclude=excluded),
        ], False

    return _related(
        "trending", build, identity, placement, limit,
        extra=window_hours, exclude=exclude, exclude_seen=True, render=render, by_score=True,
    )  # fmt: skip


def fresh(*, limit: int = 10, identity: Any = None, placement: str = "default") -> Recommendations:
    """The newest published items."""

    def build(loaded: model_store.LoadedModel | None, excluded: set[int], k: int, context_id: int) -> Tiers:
        return [fresh_candidates(k=k, exclude=excluded)], False

    return _related("fresh", build, identity, placement, limit)


def _related(
    kind: str,
    build: Callable[[model_store.LoadedModel | None, set[int], int, int], Tiers],
    identity: Any,
    placement: str,
    limit: int,
    *,
    context: Any = None,
    extra: Any = None,
    exclude: Iterable[int] = (),
    exclude_seen: bool = False,
    render: Render = None,
    by_score: bool = False,
) -> Any:
    """The shared body of the non-personal lists; ``by_score`` keeps the sources' order.

    Trending is its score: blending in freshness or reordering for variety would make
    the block disagree with the scores editors see, so only rules and the per-tag cap apply.
    """
    finish_with = render or (lambda recs: recs)
    prepared = prepare(identity, placement, limit, context, exclude, None)
    if prepared is None:
        return finish_with(Recommendations(items=[], recomm_id=uuid.uuid4().hex, placement=str(placement)))
    identity, tuning, req = prepared
    if by_score:
        tuning = replace(tuning, freshness_weight=0.0, popularity_weight=0.0, diversity_lambda=1.0)
    if render is not None:
        kind = f"{kind}:{render.__module__}.{render.__qualname__}"
    try:
        exclude_seen = exclude_seen and tuning.exclude_seen and identity is not None
        loaded = model_store.get_active()
        context_id = req.context.pk if req.context else 0
        key = list_key(
            kind, identity_key(identity), generation(identity) if identity else 0,
            last_event_id(identity) if exclude_seen else 0, loaded.version.pk if loaded else 0,
            req.placement, req.limit, context_id, extra, sorted(req.exclude), tuning, visibility_key(req),
        )  # fmt: skip
        if (hit := cache().get(key)) is not None:
            return hit
        history = load_history(identity, tuning.history_length) if exclude_seen else []
        reactions = current_reactions(identity)
        excluded = personal_exclusions(identity, history, exclude_seen=exclude_seen, reactions=reactions)
        plan = editorial_plan(req.placement)
        excluded |= plan.blocked_items | req.exclude | ({context_id} if context_id else set())
        tiers, used_model = build(loaded, excluded, max(tuning.candidates, req.limit), context_id)
        recs = serve(
            identity, req, tiers, excluded, plan, tuning,
            model=loaded if used_model else None, reactions=reactions,
        )  # fmt: skip
        out = finish_with(recs)
        cache().set(key, out, tuning.cache_timeout)
        return out
    except Exception:
        logger.exception("%s list failed; serving the non-personalized fallback", kind)
        return finish_with(safe_fallback(identity, req, tuning))
