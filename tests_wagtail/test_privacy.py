"""A page is never recommended, nor named in an explanation, to someone who may not open it.

The same requesters ask through the API, the template tags and the editor's block:
an anonymous visitor, a signed-in reader outside the group, a member of the group.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import engines
from django.test import RequestFactory
from wagtail.models import Page, PageViewRestriction, Site

from project.wagtail_news.models import HomePage, SectionPage
from recommender.serving.candidates import Candidate, HistoryEvent
from recommender.serving.recommend import prepare, serve
from recommender.serving.rules import EditorialPlan
from recommender.tasks import embed_items
from tests_wagtail.conftest import add_page, client_for, item_for, make_article, make_user, restrict

pytestmark = pytest.mark.django_db

PUBLIC, LOGIN, GROUP, PASSWORD = "Public story", "Login story", "Members story", "Password story"


@pytest.fixture
def pages(home, section, members):
    """One public article, one for signed-in readers, one in a members-only section, one behind a password."""
    club = add_page(home, SectionPage(title="Club", slug="club"))
    restrict(club, PageViewRestriction.GROUPS, groups=[members])
    found = {
        PUBLIC: make_article(section, PUBLIC),
        LOGIN: make_article(section, LOGIN),
        GROUP: make_article(club, GROUP),
        PASSWORD: make_article(section, PASSWORD),
    }
    restrict(found[LOGIN])
    restrict(found[PASSWORD], PageViewRestriction.PASSWORD, password="open sesame")
    return found


def titles(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {entry["title"] for entry in response.json()["items"]}


LISTS = ["/api/recommender/recommendations/?limit=20", "/api/recommender/trending/?limit=20"]


@pytest.mark.parametrize("url", LISTS)
def test_api_lists_show_each_requester_only_the_pages_it_may_open(pages, reader, member, url):
    assert titles(client_for().get(url)) == {PUBLIC}
    assert titles(client_for(reader).get(url)) == {PUBLIC, LOGIN}
    assert titles(client_for(member).get(url)) == {PUBLIC, LOGIN, GROUP}


def test_similar_to_a_restricted_page_is_not_found_for_those_outside(pages, reader, member):
    embed_items()  # similar pages come from the text's embeddings
    url = f"/api/recommender/items/{item_for(pages[GROUP]).pk}/similar/?limit=20"
    assert client_for().get(url).status_code == 404
    assert client_for(reader).get(url).status_code == 404
    assert titles(client_for(member).get(url)) == {PUBLIC, LOGIN}


def test_a_password_page_is_shown_once_the_password_was_entered_in_the_session(pages):
    client = client_for()
    response = client.post(
        f"/_util/authenticate_with_password/{pages[PASSWORD].get_view_restrictions().first().pk}/"
        f"{pages[PASSWORD].pk}/",
        {"password": "open sesame", "return_url": "/"},
    )
    assert response.status_code == 302
    assert titles(client.get(LISTS[0])) == {PUBLIC, PASSWORD}


def render_tags(user, source: str) -> str:
    """``source`` rendered as a page template would, for a request of ``user`` (None: anonymous)."""
    request = RequestFactory().get("/")
    request.user = user if user is not None else AnonymousUser()
    request.session = {}
    return engines["django"].from_string("{% load recommender %}" + source).render({"request": request})


@pytest.mark.parametrize("source", ["{% recommended_for_you limit=20 %}", "{% trending limit=20 %}"])
def test_template_tags_leave_out_pages_the_reader_may_not_open(pages, reader, member, source):
    anonymous, signed_in, in_group = (render_tags(u, source) for u in (None, reader, member))
    assert PUBLIC in anonymous and LOGIN not in anonymous and GROUP not in anonymous
    assert LOGIN in signed_in and GROUP not in signed_in
    assert GROUP in in_group
    assert PASSWORD not in anonymous + signed_in + in_group


def test_similar_items_tag_in_a_page_template_leaves_out_restricted_pages(pages, reader):
    embed_items()
    source = "{% load wagtailcore_tags %}{% similar_items page limit=20 %}"
    request = RequestFactory().get("/")
    request.user, request.session = reader, {}
    html = (
        engines["django"]
        .from_string("{% load recommender %}" + source)
        .render({"request": request, "page": pages[PUBLIC]})
    )
    assert LOGIN in html and GROUP not in html and PASSWORD not in html


def test_the_editors_block_leaves_out_pages_the_reader_may_not_open(home, pages, reader, member):
    home.body = [("recommended_for_you", {"count": 10, "placement": "default"})]
    home.save_revision().publish()
    anonymous = client_for().get("/").content.decode()
    in_group = client_for(member).get("/").content.decode()
    assert 'data-recommender-block="recommended_for_you"' in anonymous
    block = anonymous.split('data-recommender-block="recommended_for_you"')[1].split("</section>")[0]
    assert PUBLIC in block and LOGIN not in block and GROUP not in block
    block = in_group.split('data-recommender-block="recommended_for_you"')[1].split("</section>")[0]
    assert GROUP in block and LOGIN in block


def test_an_explanation_never_names_a_page_the_reader_may_not_open(pages, member, members):
    """A member read the members' story, then left the group: it no longer explains anything."""
    group_item, public_item = item_for(pages[GROUP]), item_for(pages[PUBLIC])
    history = [HistoryEvent(1, group_item.pk, "read", group_item.published_at)]
    tiers = [[Candidate(public_item.pk, 1.0, "personalized", because=group_item.pk)]]

    def explained() -> object:
        request = RequestFactory().get("/")
        request.user, request.session = member, {}
        identity, tuning, req = prepare(request, "default", 5, None, (), None)
        recs = serve(identity, req, tiers, set(), EditorialPlan(), tuning, history=history)
        return recs.items[0].because

    assert explained() == group_item
    member.groups.remove(members)
    assert explained() is None


def test_lifecycle_unpublish_restrict_delete_never_recommended_again(home, section, pages):
    url = LISTS[0]
    client = client_for()
    extra = make_article(section, "Soon withdrawn")
    moved = make_article(section, "Soon members only")
    deleted = make_article(section, "Soon deleted")
    assert {"Soon withdrawn", "Soon members only", "Soon deleted"} <= titles(client.get(url))  # now cached
    extra.unpublish()
    Page.objects.get(pk=moved.pk).move(Page.objects.get(slug="club"), pos="last-child")
    Page.objects.get(pk=deleted.pk).delete()
    assert titles(client.get(url)) == {PUBLIC}


def test_restricting_a_section_hides_its_pages_from_cached_lists_at_once(section, pages):
    client = client_for()
    assert titles(client.get(LISTS[0])) == {PUBLIC}
    restrict(section)  # login required for the whole section, PUBLIC included
    assert titles(client.get(LISTS[0])) == set()


def test_lists_stay_within_the_requests_site(home, section, pages, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "other.example"]
    other_home = HomePage(title="Other", slug="other-home")
    Page.get_first_root_node().add_child(instance=other_home)
    Site.objects.create(hostname="other.example", port=80, root_page=other_home)
    other_section = add_page(other_home, SectionPage(title="Local", slug="local"))
    make_article(other_section, "Other site story")
    for url in LISTS:
        assert titles(client_for().get(url, HTTP_HOST="other.example")) == {"Other site story"}
        assert titles(client_for().get(url)) == {PUBLIC}
    staff = make_user()
    assert titles(client_for(staff).get(LISTS[0], HTTP_HOST="other.example")) == {"Other site story"}
