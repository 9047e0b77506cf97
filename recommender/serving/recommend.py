"""``recommend()``: the one pipeline every view, template tag and task calls.

Read :func:`recommend` top to bottom for the steps in order. Reason codes:

- ``personalized``: the model's pick from the identity's recent history (``because`` = the history item);
- ``similar_to_context``: close to the page's ``context_item`` (model space, else content,
  else co-occurrence);
- ``fallback``: the model failed (or knew none of the history), so items whose text is closest to the
  last items read are served instead (``because`` = that history item);
- ``trending`` / ``fresh``: no active model, a new visitor, personalization off, or filling a short list;
- ``editorial``: pinned or boosted by an editor.

A failure never reaches the caller: it is logged and a trending/fresh list is served.
Only bad arguments raise :class:`RecommendationError`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from recommender.adapter import Visibility, get_adapter
from recommender.caching import cache, generation, identity_key, list_key
from recommender.conf import recommender_settings
from recommender.identity import identity_from_request
from recommender.models import Interaction, Item, Profile, RecommendationLog, Tag
from recommender.serving import model_store
from recommender.serving.candidates import (
    Candidate,
    HistoryEvent,
    content_similar,
    cooccurrence_candidates,
    fresh_candidates,
    load_rows,
    model_candidates,
    model_similar,
    positive_history,
    trending_candidates,
)
from recommender.serving.ranking import blend, diversify, feedback_adjust
from recommender.serving.rules import (
    EditorialPlan,
    apply_pins,
    editorial_plan,
    more_like_this,
    personal_exclusions,
    pin_candidates,
)
from recommender.tracking.interests import tag_relatedness
from recommender.tracking.reactions import NO_REACTIONS, Reactions, current_reactions
from recommender.tuning import Tuning, get_tuning

logger = logging.getLogger(__name__)

FALLBACK_SEEDS = 5  # last history items whose neighbours stand in when the model fails
REACTION_SEEDS = 20  # newest liked and disliked items whose neighbours move up or down
FILL_MARGIN = 3  # trending/fresh fillers are only fetched when fewer than this x limit candidates came
MAX_PAGES = 50
_TOKEN = re.compile(r"^(?P<root>[0-9a-f]{32})(?:\.(?P<page>\d{1,4}))?$")
_RECOMM_ID = re.compile(r"^(?P<root>[0-9a-f]{32})(?:-(?P<page>\d{1,4}))?$")


class RecommendationError(ValueError):
    """A bad argument (placement, limit, page token, context item); the API answers 400 with the text."""


class UnknownItem(RecommendationError):
    """A context item that does not exist or may not be shown (draft, scheduled, inactive): a 404."""


@dataclass
class RecommendedItem:
    """One served item: the host object, why it is here and where."""

    item: Item
    object: Any
    score: float
    reason: str
    position: int
    because: Item | None = None
    because_tag: Tag | None = None  # the tag whose reads explain it ("Because you read about …")
    topic: Tag | None = None  # the item's tag, for "Trending in …", "New in …"
    fresh: bool = False  # a model pick that rests on the item being new ("New in …")
    popular: bool = False  # a model pick any reader would get, nothing personal ("Popular in …")


@dataclass
class Recommendations:
    """A served list; ``recomm_id`` ties impressions and clicks back to its ``RecommendationLog``."""

    items: list[RecommendedItem]
    recomm_id: str
    placement: str
    model_version: str | None = None
    next_page_token: str | None = None
    page: int = 0

    def __iter__(self) -> Iterator[RecommendedItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass(frozen=True)
class Request:
    """Validated arguments of one call."""

    placement: str
    limit: int
    context: Item | None = None
    exclude: frozenset[int] = frozenset()
    page: int = 0
    root: str | None = None  # recomm_id of the first page, for continuation pages
    served: frozenset[int] = field(default=frozenset())  # items of the previous pages
    visibility: Visibility | None = None  # what the requester may see, when not everything


def recommend(
    request_or_identity: Any,
    placement: str = "default",
    limit: int = 10,
    context_item: Item | int | None = None,
    exclude: Iterable[int] = (),
    page_token: str | None = None,
    *,
    use_cache: bool = True,
) -> Recommendations:
    """Recommendations for the current user or visitor; see the module docstring for reasons.

    ``page_token`` (a previous ``next_page_token``, or a ``recomm_id``) returns the next
    items, never repeating an item of the previous pages.
    """
    args = (request_or_identity, placement, limit, context_item, exclude, page_token)
    return _recommend(args, use_cache=use_cache, render=None)


def recommend_rendered(
    render: Callable[[Recommendations], Any],
    request_or_identity: Any,
    placement: str = "default",
    limit: int = 10,
    context_item: Item | int | None = None,
    exclude: Iterable[int] = (),
    page_token: str | None = None,
) -> Any:
    """``render(recommend(...))``, with the rendered form cached instead of the list.

    What an API response or a template needs is plain data; caching that makes a warm
    hit one cache read, with no host objects to unpickle and no serializer to run.
    ``render`` must be a module-level function: its dotted name is part of the key.
    """
    args = (request_or_identity, placement, limit, context_item, exclude, page_token)
    return _recommend(args, use_cache=True, render=render)


def _recommend(args: tuple, *, use_cache: bool, render: Callable[[Recommendations], Any] | None) -> Any:
    """The pipeline behind :func:`recommend` and :func:`recommend_rendered`."""
    finish_with = render or (lambda recs: recs)
    request_or_identity, placement, limit, context_item, exclude, page_token = args
    prepared = prepare(request_or_identity, placement, limit, context_item, exclude, page_token)
    if prepared is None:
        return finish_with(Recommendations(items=[], recomm_id=uuid.uuid4().hex, placement=str(placement)))
    identity, tuning, req = prepared
    kind = f"rec:{render.__module__}.{render.__qualname__}" if render else "rec"
    try:
        # 1. The process-wide model (None: no active version).
        loaded = model_store.get_active()
        # 2. Served from cache when nothing that shapes the list changed (tuning included);
        #    the identity's newest event id alone keys it, so a hit reads no history.
        key = list_key(
            kind, identity_key(identity), generation(identity), last_event_id(identity),
            loaded.version.pk if loaded else 0, req.placement, req.limit,
            req.context.pk if req.context else 0, sorted(req.exclude), page_token, tuning,
            visibility_key(req),
        )  # fmt: skip
        if use_cache and (hit := cache().get(key)) is not None:
            return hit
        # 3. The identity's last L events, newest first: one indexed query.
        history = load_history(identity, tuning.history_length)
        # 4. What this identity may not see, and what editors decided for the placement.
        personal = personalization_enabled(identity)
        reactions = current_reactions(identity) if personal else NO_REACTIONS
        excluded = set(req.exclude | req.served)
        if personal:
            excluded |= personal_exclusions(
                identity, history, exclude_seen=tuning.exclude_seen, reactions=reactions
            )
            # A disliked item's reads no longer speak for the reader: the model never sees them.
            history = [e for e in history if e.item_id not in reactions.disliked]
        if req.context:
            excluded.add(req.context.pk)
        plan = editorial_plan(req.placement)
        excluded |= plan.blocked_items
        # 5. Candidates from the model (or its fallbacks), in tiers: a later tier only fills.
        tiers, used_model = gather_candidates(
            identity, history if personal else [], loaded, req, excluded, tuning
        )
        # 6-10. Filter, blend, diversify, pin, explain, log.
        recs = serve(
            identity, req, tiers, excluded, plan, tuning,
            model=loaded if used_model else None, history=history if personal else [], reactions=reactions,
        )  # fmt: skip
        out = finish_with(recs)
        if use_cache:
            cache().set(key, out, tuning.cache_timeout)
        return out
    except Exception:
        logger.exception("recommendation pipeline failed; serving the non-personalized fallback")
        return finish_with(safe_fallback(identity, req, tuning))


def gather_candidates(
    identity: Any,
    history: Sequence[HistoryEvent],
    loaded: model_store.LoadedModel | None,
    req: Request,
    excluded: set[int],
    tuning: Tuning,
) -> tuple[list[list[Candidate]], bool]:
    """Candidate tiers for this call, and whether the model produced any of them."""
    k = max(tuning.candidates, req.limit)
    primary: list[Candidate] = []
    used_model = False
    if req.context is not None:
        primary += context_candidates(req.context.pk, loaded, k=k, exclude=excluded)
        used_model = loaded is not None and bool(primary)
    liked = more_like_this(identity) if history else []
    # "More like this" counts as the newest likes (history is newest first).
    steering = [HistoryEvent(0, pk, "like", timezone.now()) for pk in liked] + [*history]
    positive = positive_history(steering)
    if positive and loaded is not None:
        try:
            personalized = model_candidates(
                loaded, steering, k=k, exclude=excluded, allow_seen=not tuning.exclude_seen
            )
            used_model = used_model or bool(personalized)
        except Exception:
            logger.exception("model %s failed; falling back to content similarity", loaded.name)
            personalized = []
        if not personalized:  # model error, or a history the model knows nothing of
            seeds = list(dict.fromkeys(e.item_id for e in reversed(positive)))[:FALLBACK_SEEDS]
            personalized = content_similar(seeds, k=k, exclude=excluded, reason="fallback")
        primary += personalized
    if not positive and req.context is None:
        # A new visitor: what is popular now (spread over topics by the per-tag cap, editors'
        # boosts joining it), the newest items only filling: pages list those already.
        return [
            trending_candidates(k=k, exclude=excluded),
            fresh_candidates(k=k, exclude=excluded),
        ], used_model
    if len(primary) >= FILL_MARGIN * req.limit:  # plenty left after state filters and tag caps
        return [primary], used_model
    sources = {"trending": trending_candidates, "fresh": fresh_candidates}
    fills = [sources[name](k=k, exclude=excluded) for name in tuning.fallback_order if name in sources]
    return [primary, *fills], used_model


def context_candidates(
    item_id: int, loaded: model_store.LoadedModel | None, *, k: int, exclude: set[int]
) -> list[Candidate]:
    """Items like the page's item: the model's item space, else content, else co-occurrence."""
    found: list[Candidate] = []
    if loaded is not None:
        try:
            found = model_similar(loaded, item_id, k=k, exclude=exclude)
        except Exception:
            logger.exception("model similar() failed for item %s", item_id)
    if not found:
        found = content_similar([item_id], k=k, exclude=exclude)
    if not found:
        found = cooccurrence_candidates(item_id, k=k, exclude=exclude)
    return found


def serve(
    identity: Any,
    req: Request,
    tiers: Sequence[Sequence[Candidate]],
    excluded: set[int],
    plan: EditorialPlan,
    tuning: Tuning,
    *,
    model: model_store.LoadedModel | None = None,
    history: Sequence[HistoryEvent] = (),
    reactions: Reactions = NO_REACTIONS,
) -> Recommendations:
    """Turn candidate tiers into a logged list: the shared tail of every recommender entry point."""
    # 6. Editors' boosted items join the first tier; pins are resolved to items.
    tiers = [list(t) for t in tiers] or [[]]
    proposed = {c.item_id for t in tiers for c in t}
    tiers[0] += [Candidate(pk, 0.0, "editorial") for pk in plan.boosted_items if pk not in proposed]
    pins = pin_candidates(plan, excluded)
    # 7. Only servable items (active, published, not blocked or excluded) go on.
    rows = load_rows({c.item_id for t in tiers for c in t} | {pk for _, pk in pins})
    rows = {pk: row for pk, row in rows.items() if pk not in excluded and not plan.is_blocked(row)}
    rows = visible(req, rows)
    # 8. Blend with freshness and popularity, move items like the reader's likes and dislikes;
    #    diversify within the per-tag cap; pin.
    now = timezone.now()
    ranked = [blend(t, rows, tuning, plan, now) for t in tiers]
    if reactions.liked or reactions.disliked:
        liked, disliked = reactions.liked[:REACTION_SEEDS], reactions.disliked[:REACTION_SEEDS]
        seeds = load_rows({*liked, *disliked})
        vectors = [[seeds[pk].vector for pk in ids if pk in seeds and seeds[pk].vector is not None]
                   for ids in (liked, disliked)]  # fmt: skip
        ranked = [feedback_adjust(t, rows, vectors[0], vectors[1], tuning) for t in ranked]
    tag_ids = {t for row in rows.values() if row.vector is None for t in row.tag_ids}
    context = load_rows({req.context.pk}).get(req.context.pk) if req.context else None
    picked = diversify(
        ranked, rows, limit=req.limit, diversity_lambda=tuning.diversity_lambda,
        max_per_tag=tuning.max_per_tag, tag_relatedness=tag_relatedness(tag_ids) if tag_ids else {},
        uncapped_tags=context.tag_ids if context else (),
    )  # fmt: skip
    by_id = {c.item_id: c for t in ranked for c in t}
    pinned = [
        (pos, Candidate(pk, by_id[pk].final if pk in by_id else 0.0, "editorial"))
        for pos, pk in pins
        if pk in rows
    ]
    picked = apply_pins(picked, pinned, req.limit)
    # 9. Explanations and host objects; 10. the log.
    return finish(identity, req, picked, model=model, history=history, rows=rows)


def finish(
    identity: Any,
    req: Request,
    picked: Sequence[Candidate],
    *,
    model: model_store.LoadedModel | None,
    history: Sequence[HistoryEvent],
    rows: dict,
) -> Recommendations:
    """Attach host objects and explanations, write the ``RecommendationLog``, build the result."""
    history_ids = {e.item_id for e in history}
    because_ids = {c.because for c in picked if c.because in history_ids}
    # Only a servable read is named: an article since unpublished or withdrawn never shows up.
    because_ids = set(Item.objects.servable().filter(pk__in=because_ids).values_list("pk", flat=True))
    because_ids = set(visible(req, dict.fromkeys(because_ids)))  # nor one the reader may not see
    items = {
        i.pk: i
        for i in Item.objects.filter(pk__in=[c.item_id for c in picked] + list(because_ids))
        .select_related("content_type")
        .prefetch_related("content_object")
    }
    # Items no history item explains: the tag whose reads do ("Because you read about …"),
    # else the item's own tag ("Trending in …", "New in …").
    tag_ids = {c.because_tag for c in picked if c.because_tag is not None}
    tag_ids |= {t for c in picked if c.because not in because_ids for t in rows[c.item_id].tag_ids[:1]}
    tags = Tag.objects.in_bulk(list(tag_ids)) if tag_ids else {}
    out: list[RecommendedItem] = []
    for c in picked:
        item = items.get(c.item_id)
        if item is None or item.content_object is None:  # host object deleted since mirroring
            continue
        because = items.get(c.because) if c.because in because_ids else None
        because_tag = tags.get(c.because_tag) if because is None and c.because_tag is not None else None
        own = rows[c.item_id].tag_ids[:1]
        topic = tags.get(own[0]) if because is None and own else None
        out.append(
            RecommendedItem(
                item,
                item.content_object,
                c.final,
                c.reason,
                len(out),
                because,
                because_tag,
                topic,
                fresh=c.fresh and because is None and because_tag is None,
                popular=c.popular and because is None and because_tag is None,
            )
        )
    root = req.root or uuid.uuid4().hex
    recomm_id = root if req.page == 0 else f"{root}-{req.page}"
    RecommendationLog.objects.create(
        recomm_id=recomm_id,
        user_id=getattr(identity, "user_id", None),
        visitor_id=(identity.visitor_id or "") if identity is not None else "",
        placement=req.placement,
        context_item=req.context,
        page=req.page,
        model_version=model.version if model else None,
        items=[
            {
                "item": r.item.pk,
                "position": r.position,
                "reason": r.reason,
                "score": round(r.score, 6),
                "because": r.because.pk if r.because else None,
                "because_tag": r.because_tag.pk if r.because_tag else None,
            }
            for r in out
        ],
    )
    # Only a known identity can page: the next page is checked against its own served lists.
    known = bool(getattr(identity, "is_known", False))
    more = known and len(out) == req.limit and req.page + 1 < MAX_PAGES
    return Recommendations(
        items=out,
        recomm_id=recomm_id,
        placement=req.placement,
        model_version=model.name if model else None,
        next_page_token=f"{root}.{req.page + 1}" if more else None,
        page=req.page,
    )


def safe_fallback(identity: Any, req: Request, tuning: Tuning) -> Recommendations:
    """Trending then fresh, with no model and no personal data: what a broken pipeline serves."""
    try:
        k = max(tuning.candidates, req.limit)
        excluded = set(req.exclude | req.served)
        tiers = [trending_candidates(k=k, exclude=excluded), fresh_candidates(k=k, exclude=excluded)]
        return serve(identity, req, tiers, excluded, EditorialPlan(), tuning)
    except Exception:
        logger.exception("fallback recommendations failed too; serving an empty list")
        return Recommendations(items=[], recomm_id=uuid.uuid4().hex, placement=req.placement)


# -- arguments, identity, history ------------------------------------------------


def prepare(
    request_or_identity: Any,
    placement: str,
    limit: int,
    context_item: Item | int | None,
    exclude: Iterable[int],
    page_token: str | None,
) -> tuple[Any, Tuning, Request] | None:
    """(identity, tuning, validated request); None when reading them failed for a reason not the caller's.

    Bad arguments raise :class:`RecommendationError`; anything else (a database
    outage while resolving a page token, say) is logged and the caller serves nothing.
    """
    try:
        identity = resolve_identity(request_or_identity)
        request = None if request_or_identity is identity else request_or_identity
        visibility = get_adapter().visibility(request, identity)
        req = validate(identity, placement, limit, context_item, exclude, page_token, visibility)
        return identity, get_tuning(), req
    except RecommendationError:
        raise
    except Exception:
        logger.exception("could not read the recommendation request")
        return None


def resolve_identity(request_or_identity: Any) -> Any:
    """An ``Identity`` from a request, or the identity itself; None stays anonymous."""
    if request_or_identity is None or hasattr(request_or_identity, "visitor_id"):
        return request_or_identity

    return identity_from_request(request_or_identity)


def validate(
    identity: Any,
    placement: str,
    limit: int,
    context_item: Item | int | None,
    exclude: Iterable[int],
    page_token: str | None,
    visibility: Visibility | None = None,
) -> Request:
    """Check every argument; raise :class:`RecommendationError` with a message a client can act on."""
    if placement not in recommender_settings.PLACEMENTS:
        raise RecommendationError(
            f"Unknown placement {placement!r}; expected one of {', '.join(recommender_settings.PLACEMENTS)}."
        )
    max_limit = int(get_tuning().max_limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise RecommendationError(f"limit must be an integer from 1 to {max_limit}.")
    context = None
    if context_item is not None:
        # A draft, scheduled or inactive item is as unknown as a missing id: nothing may be built on it.
        pk = context_item.pk if isinstance(context_item, Item) else context_item
        try:
            context = Item.objects.servable().filter(pk=int(pk)).first()
        except (TypeError, ValueError):
            context = None
        if context is not None and visibility is not None and not visibility.allowed([context.pk]):
            context = None  # a page the requester may not open is unknown to it
        if context is None:
            raise UnknownItem(f"Unknown context item {context_item!r}.")
    try:
        excluded = frozenset(int(pk) for pk in exclude)
    except (TypeError, ValueError) as exc:
        raise RecommendationError("exclude must be a list of item ids.") from exc
    root, page, served = parse_page_token(identity, page_token) if page_token else (None, 0, frozenset())
    return Request(placement, limit, context, excluded, page, root, served, visibility)


def visibility_key(req: Request) -> str:
    """The part of a list's cache key that tells apart requesters who may see different items."""
    return req.visibility.key if req.visibility is not None else ""


def visible(req: Request, rows: dict[int, Any]) -> dict[int, Any]:
    """``rows`` without the items the requester may not see (all of them without a visibility)."""
    if req.visibility is None or not rows:
        return rows
    allowed = set(req.visibility.allowed(list(rows)))
    return {pk: row for pk, row in rows.items() if pk in allowed}


def parse_page_token(identity: Any, token: str) -> tuple[str, int, frozenset[int]]:
    """(root recomm_id, page, items served on the previous pages) for a token or a recomm_id.

    A token is ``<root>.<page>``; a recomm_id (``<root>`` or ``<root>-<page>``) asks for the
    page after it. Only the identity's own lists are found, so tokens cannot be borrowed.
    """
    token = str(token).strip()
    match = _TOKEN.match(token)
    if match and match["page"] is not None:
        root, page = match["root"], int(match["page"])
    else:
        match = _RECOMM_ID.match(token)
        if not match:
            raise RecommendationError("Malformed page token.")
        root, page = match["root"], int(match["page"] or 0) + 1
    if not 1 <= page < MAX_PAGES:
        raise RecommendationError(f"Page must be between 1 and {MAX_PAGES - 1}.")
    ids = [root] + [f"{root}-{n}" for n in range(1, page)]
    logs = RecommendationLog.objects.for_identity(identity).filter(recomm_id__in=ids)
    served = [entry for items in logs.values_list("items", flat=True) for entry in items]
    if not logs.filter(recomm_id=root).exists():
        raise RecommendationError("Unknown or expired page token.")
    return root, page, frozenset(int(entry["item"]) for entry in served)


def last_event_id(identity: Any) -> int:
    """The id of the identity's newest event (0: none); part of every cache key of its lists."""
    return Interaction.objects.newest_id(identity)


def load_history(identity: Any, length: int) -> list[HistoryEvent]:
    """The last ``length`` events, newest first, as plain tuples (one query on an index)."""
    return [
        HistoryEvent(*row)
        for row in Interaction.objects.last_events_for(identity, length).values_list(
            "id", "item_id", "event_type", "timestamp"
        )
    ]


def personalization_enabled(identity: Any) -> bool:
    """False only when the identity opted out (no profile means the default: on)."""
    if identity is None:
        return False
    enabled = Profile.objects.for_identity(identity).values_list("personalization_enabled", flat=True).first()
    return enabled is None or bool(enabled)
