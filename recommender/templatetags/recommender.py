"""Template tags that put recommendation blocks on host pages: ``{% load recommender %}``.

``{% recommended_for_you limit=6 placement="home" %}``, ``{% similar_items article limit=4 %}``
and ``{% trending limit=5 %}`` render overridable templates, most specific first
(``recommender/blocks/<placement>/<block>.html``, then ``recommender/blocks/<block>.html``).
Each accepts ``as name`` to put the ``Recommendations`` in the context instead, and
``exclude=<objects>`` for items the page shows itself (e.g. its "Latest" list). One
page never shows an item twice: each block leaves out what earlier blocks of the same
request showed.

The tags never raise: a failing service or template is logged and the trending
fallback (or nothing) is rendered, so the recommender can't break the host page.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

from django import template
from django.contrib.contenttypes.models import ContentType
from django.template.base import FilterExpression, Parser, Token
from django.template.context import Context
from django.template.library import parse_bits
from django.urls import reverse
from django.utils.safestring import SafeString

from recommender.models import Item
from recommender.serving import related
from recommender.serving.reasons import reason_text
from recommender.serving.recommend import Recommendations, recommend

logger = logging.getLogger(__name__)
register = template.Library()

SAFE_PLACEMENT = re.compile(r"^[\w-]{1,64}$")


def _as_item(obj: Any) -> Item | None:
    """The ``Item`` mirroring a host object (or the Item itself)."""
    if isinstance(obj, Item):
        return obj
    if obj is None or getattr(obj, "pk", None) is None:
        return None
    content_type = ContentType.objects.get_for_model(obj)
    return Item.objects.filter(content_type=content_type, object_id=str(obj.pk)).first()


def _recommended_for_you(
    context: Context,
    limit: int = 6,
    placement: str = "default",
    context_item: Any = None,
    exclude: frozenset[int] = frozenset(),
) -> Recommendations:
    request = context.get("request")
    if request is None:
        raise ValueError("recommended_for_you needs 'request' in the template context")
    item = _as_item(context_item) if context_item is not None else None
    return recommend(request, placement=placement, limit=int(limit), context_item=item, exclude=exclude)


def _similar_items(
    context: Context,
    obj: Any,
    limit: int = 4,
    placement: str = "article",
    exclude: frozenset[int] = frozenset(),
) -> Recommendations:
    item = _as_item(obj)
    if item is None:
        raise ValueError(f"{obj!r} is not a recommendable item")
    # The request, not only its identity: the adapter's visibility reads it (site, access rules).
    return related.similar(
        item, limit=int(limit), identity=context.get("request"), placement=placement, exclude=exclude
    )


def _trending(
    context: Context, limit: int = 5, placement: str = "default", exclude: frozenset[int] = frozenset()
) -> Recommendations:
    return related.trending(
        limit=int(limit), identity=context.get("request"), placement=placement, exclude=exclude
    )


SHOWN = "_recommender_shown"  # request attribute: Item ids the page's blocks have shown so far


def _item_ids(objects: Any) -> set[int]:
    """Item ids of host objects, Items or ids (one query per content type)."""
    if objects is None or objects == "":
        return set()
    ids: set[int] = set()
    by_type: dict[ContentType, list[str]] = {}
    for obj in objects:
        if isinstance(obj, Item):
            ids.add(obj.pk)
        elif isinstance(obj, int):
            ids.add(obj)
        elif getattr(obj, "pk", None) is not None:
            by_type.setdefault(ContentType.objects.get_for_model(obj), []).append(str(obj.pk))
    for content_type, pks in by_type.items():
        ids.update(
            Item.objects.filter(content_type=content_type, object_id__in=pks).values_list("pk", flat=True)
        )
    return ids


def _shown(context: Context) -> set[int]:
    """The items this request's blocks showed so far (a fresh set without a request)."""
    request = context.get("request")
    if request is None:
        return set()
    if not hasattr(request, SHOWN):
        setattr(request, SHOWN, set())
    return getattr(request, SHOWN)


def _empty(placement: str) -> Recommendations:
    return Recommendations(items=[], recomm_id="", placement=placement)


class RecommendationBlockNode(template.Node):
    """Fetches one list through a service and renders its block, or stores it with ``as``."""

    def __init__(
        self,
        name: str,
        fetch: Callable[..., Recommendations],
        args: list[FilterExpression],
        kwargs: dict[str, FilterExpression],
        asvar: str | None,
    ) -> None:
        self.name, self.fetch, self.args, self.kwargs, self.asvar = name, fetch, args, kwargs, asvar

    def render(self, context: Context) -> str:
        placement, limit = "default", 5
        shown = _shown(context)
        try:
            args = [arg.resolve(context) for arg in self.args]
            kwargs = {key: value.resolve(context) for key, value in self.kwargs.items()}
            placement, limit = str(kwargs.get("placement", placement)), kwargs.get("limit", limit)
            kwargs["exclude"] = frozenset(_item_ids(kwargs.get("exclude")) | shown)
            recs, block = self.fetch(context, *args, **kwargs), self.name
        except Exception:
            logger.exception("recommender: {%% %s %%} failed; rendering the trending fallback", self.name)
            recs, block = _fallback(context, limit, placement, frozenset(shown)), "fallback"
        shown.update(rec.item.pk for rec in recs)
        if self.asvar:
            context[self.asvar] = recs
            return ""
        if not recs:
            return ""
        try:
            return self._render_block(context, block, recs)
        except Exception:
            logger.exception("recommender: rendering the %s block failed; rendering nothing", block)
            return ""

    def _render_block(self, context: Context, block: str, recs: Recommendations) -> SafeString:
        names = [f"recommender/blocks/{block}.html"]
        if SAFE_PLACEMENT.match(recs.placement or ""):
            names.insert(0, f"recommender/blocks/{recs.placement}/{block}.html")
        tmpl = context.template.engine.select_template(names)
        values = {
            "recs": recs,
            "items": recs.items,
            "placement": recs.placement,
            "block": self.name,
            "feedback_url": reverse("recommender:feedback"),
        }
        new_context = context.new(values)
        csrf_token = context.get("csrf_token")
        if csrf_token is not None:
            new_context["csrf_token"] = csrf_token
        return tmpl.render(new_context)


def _fallback(context: Context, limit: Any, placement: str, exclude: frozenset[int]) -> Recommendations:
    """Trending items in place of a failed block, or an empty list when even that fails."""
    try:
        return _trending(context, limit=int(limit), placement=placement, exclude=exclude)
    except Exception:
        logger.exception("recommender: the trending fallback failed too; rendering nothing")
        return _empty(placement)


def _block_tag(
    name: str, fetch: Callable[..., Recommendations]
) -> Callable[[Parser, Token], RecommendationBlockNode]:
    """A compile function accepting the arguments of ``fetch`` (after the context) and ``as name``."""
    spec = inspect.getfullargspec(fetch)

    def compile_tag(parser: Parser, token: Token) -> RecommendationBlockNode:
        bits = token.split_contents()[1:]
        asvar = None
        if len(bits) >= 2 and bits[-2] == "as":
            asvar, bits = bits[-1], bits[:-2]
        args, kwargs = parse_bits(
            parser,
            bits,
            spec.args[1:],
            spec.varargs,
            spec.varkw,
            spec.defaults,
            spec.kwonlyargs,
            spec.kwonlydefaults,
            False,
            name,
        )
        return RecommendationBlockNode(name, fetch, args, kwargs, asvar)

    return compile_tag


register.tag("recommended_for_you", _block_tag("recommended_for_you", _recommended_for_you))
register.tag("similar_items", _block_tag("similar_items", _similar_items))
register.tag("trending", _block_tag("trending", _trending))


@register.simple_tag
def recommender_url(rec: Any) -> str:
    """The link of a recommended item: its mirrored URL, else the host object's ``get_absolute_url``."""
    if rec.item.url:
        return rec.item.url
    get_url = getattr(rec.object, "get_absolute_url", None)
    return get_url() if callable(get_url) else ""


@register.simple_tag
def recommender_reason(rec: Any) -> str:
    """The human explanation of one recommended item, e.g. "Because you read …" (``serving.reasons``)."""
    return reason_text(rec)
