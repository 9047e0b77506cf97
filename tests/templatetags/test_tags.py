"""The ``{% load recommender %}`` tags: tracked blocks, overrides, ``as``, and never raising."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, RequestContext, Template, TemplateSyntaxError
from django.test import RequestFactory

from recommender.identity import Identity
from recommender.models import Item, RecommendationLog
from recommender.serving import related
from recommender.serving.recommend import RecommendedItem
from recommender.templatetags import recommender as tags
from tests.serving import conftest as serving
from tests.serving import factories
from tests.serving.conftest import activate_model

serving_settings = serving.serving_settings
trained_models = serving.trained_models

ITEM = re.compile(
    r'data-recommender-item="(\d+)" data-recommender-recomm-id="(\w+)" '
    r'data-recommender-position="(\d+)" data-recommender-placement="([\w-]+)"'
)


@pytest.fixture
def catalogue(db, trained_models, serving_settings) -> dict[str, list[Item]]:
    items = factories.make_catalogue()
    activate_model(trained_models[0])
    return items


def page_request(user=None, visitor_id: str = "visitor-1"):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    request.recommender_visitor_id = visitor_id
    return request


def render(source: str, request=None, **values) -> str:
    template = Template("{% load recommender %}" + source)
    if request is None:
        return template.render(Context(values))
    return template.render(RequestContext(request, values))


def test_recommended_for_you_renders_a_tracked_block_for_the_reader(catalogue):
    user = factories.make_user()
    history = catalogue["climate"][:4]
    factories.add_events(Identity(user.pk), history)
    html = render('{% recommended_for_you limit=3 placement="home" %}', page_request(user))
    found = ITEM.findall(html)
    assert len(found) == 3
    recomm_id = found[0][1]
    log = RecommendationLog.objects.get(recomm_id=recomm_id)
    assert log.user_id == user.pk and log.placement == "home"
    assert [(int(i), int(p)) for i, _, p, _ in found] == [(e["item"], e["position"]) for e in log.items]
    assert {placement for *_, placement in found} == {"home"}
    # one climate read, or the climate reads together ("about Climate"), explain each item
    assert "Because you read" in html
    assert (
        any(f"Because you read “{i.title}”" in html for i in history)
        or "Because you read about Climate" in html
    )
    assert 'name="kind" value="not_interested"' in html and "csrfmiddlewaretoken" in html
    assert 'action="/api/recommender/feedback/"' in html
    assert 'href="/articles/story-' in html


def test_as_form_puts_the_recommendations_in_the_context(catalogue):
    html = render(
        '{% recommended_for_you limit=2 placement="home" as recs %}'
        "{{ recs.recomm_id }}|{% for rec in recs %}{{ rec.item.pk }}@{{ rec.position }};{% endfor %}",
        page_request(),
    )
    recomm_id, listed = html.split("|")
    log = RecommendationLog.objects.get(recomm_id=recomm_id)
    assert listed == "".join(f"{e['item']}@{e['position']};" for e in log.items)
    assert "<section" not in html


def test_similar_items_accepts_a_host_object_or_an_item(catalogue):
    item = catalogue["technology"][0]
    for target in (item, item.content_object):
        html = render("{% similar_items target limit=3 %}", page_request(), target=target)
        ids = [int(i) for i, *_ in ITEM.findall(html)]
        assert len(ids) == 3 and item.pk not in ids
        assert {factories.topic_of(pk) for pk in ids} == {"technology"}
        assert 'data-recommender-placement="article"' in html


def test_recommended_for_you_around_the_page_item(catalogue):
    article = catalogue["football"][0].content_object
    html = render(
        '{% recommended_for_you limit=n placement="article" context_item=article %}',
        page_request(),
        article=article,
        n="3",
    )
    ids = [int(i) for i, *_ in ITEM.findall(html)]
    assert len(ids) == 3 and catalogue["football"][0].pk not in ids
    assert 'data-recommender-reason="similar_to_context"' in html


def test_trending_lists_the_hottest_item_first(catalogue):
    hot = catalogue["football"][3]
    Item.objects.filter(pk=hot.pk).update(trending_score=99.0)
    html = render("{% trending limit=2 %}", page_request())
    assert ITEM.findall(html)[0][0] == str(hot.pk)
    assert "Trending" in html


def test_a_placement_can_override_its_block(catalogue, settings, tmp_path):
    override = tmp_path / "recommender" / "blocks" / "home"
    override.mkdir(parents=True)
    (override / "recommended_for_you.html").write_text("HOME BLOCK {{ items|length }} {{ recs.recomm_id }}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    home = render('{% recommended_for_you limit=2 placement="home" %}', page_request())
    assert home.startswith("HOME BLOCK 2 ")
    other = render('{% recommended_for_you limit=2 placement="tag" %}', page_request())
    assert "HOME BLOCK" not in other and len(ITEM.findall(other)) == 2


def test_a_failing_service_renders_the_trending_fallback_and_logs(catalogue, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("model store exploded")

    monkeypatch.setattr(tags, "recommend", broken)
    logger = logging.getLogger("recommender")  # the demo's LOGGING stops it at "recommender"
    logger.addHandler(caplog.handler)
    try:
        html = render('{% recommended_for_you limit=3 placement="home" %}', page_request())
    finally:
        logger.removeHandler(caplog.handler)
    assert "recommender-block--fallback" in html and len(ITEM.findall(html)) == 3
    log = RecommendationLog.objects.get(recomm_id=ITEM.findall(html)[0][1])
    assert {e["reason"] for e in log.items} <= {"trending", "fresh"}
    assert any(r.exc_info and "model store exploded" in str(r.exc_info[1]) for r in caplog.records)


def test_when_the_fallback_fails_too_nothing_is_rendered(catalogue, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(tags, "recommend", broken)
    monkeypatch.setattr(related, "similar", broken)
    monkeypatch.setattr(related, "trending", broken)
    assert render("{% recommended_for_you limit=3 %}", page_request()).strip() == ""
    thing = catalogue["climate"][0]
    assert render("{% similar_items thing limit=3 %}", page_request(), thing=thing).strip() == ""
    assert render("{% trending %}", page_request()).strip() == ""
    as_form = render("{% trending limit=2 as recs %}[{{ recs|length }}]", page_request())
    assert as_form == "[0]"


def test_without_a_request_or_an_item_the_block_falls_back(catalogue):
    html = render('{% recommended_for_you limit=2 placement="home" %}')
    assert "recommender-block--fallback" in html and len(ITEM.findall(html)) == 2
    html = render("{% similar_items nothing limit=2 %}", page_request(), nothing=None)
    assert "recommender-block--fallback" in html


def test_reason_texts_name_the_history_item_or_the_tag(catalogue):
    item, read = catalogue["climate"][:2]
    tag = item.tags.get()

    def reason(**fields) -> str:
        code = fields.pop("reason", "personalized")
        rec = RecommendedItem(item, item.content_object, 1.0, code, 0, **fields)
        return render("{% recommender_reason rec %}", rec=rec)

    assert reason(because=read) == f"Because you read “{read.title}”"
    assert reason(because_tag=tag) == f"Because you read about {tag.name}"
    assert reason(reason="trending", topic=tag) == f"Trending in {tag.name}"
    assert reason(reason="fresh", topic=tag) == f"New in {tag.name}"
    assert reason(reason="personalized", topic=tag) == "Recommended for you"  # no measured reason
    assert reason(reason="personalized", topic=tag, fresh=True) == f"New in {tag.name}"  # its age did most
    assert reason(reason="personalized", topic=tag, popular=True) == f"Popular in {tag.name}"  # not personal
    assert reason(reason="personalized", popular=True) == "Popular"
    assert reason(reason="trending") == "Trending"
    assert reason(reason="fresh") == "New"


def test_titles_are_escaped(catalogue):
    item = catalogue["climate"][0]
    Item.objects.filter(pk=item.pk).update(title="<script>alert(1)</script>", trending_score=99.0)
    html = render("{% trending limit=1 %}", page_request())
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_unknown_arguments_fail_when_the_template_is_compiled():
    with pytest.raises(TemplateSyntaxError):
        Template("{% load recommender %}{% trending colour='red' %}")


def test_blocks_of_one_page_never_repeat_an_item_nor_what_the_page_lists(catalogue):
    """A page's blocks share what they showed; ``exclude=`` takes the page's own list (host objects)."""
    user = factories.make_user()
    factories.add_events(Identity(user.pk), catalogue["climate"][:3])
    for item in catalogue["climate"][3:]:
        Item.objects.filter(pk=item.pk).update(trending_score=5.0)
    listed = [i.content_object for i in catalogue["climate"][3:5]]  # the page's "Latest", say
    html = render(
        '{% recommended_for_you limit=4 placement="home" exclude=latest %}'
        "{% trending limit=5 exclude=latest %}{% trending limit=5 as more %}{{ more.items|length }}",
        page_request(user),
        latest=listed,
    )
    shown = [int(i) for i, *_ in ITEM.findall(html)]
    assert len(shown) == 9 and len(set(shown)) == len(shown)  # 4 + 5 and none twice
    assert not set(shown) & {i.pk for i in catalogue["climate"][3:5]}
    assert html.endswith("5")  # a later block still fills its list with what is left
