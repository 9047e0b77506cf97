"""A seeded reader signs in, sees "Recommended for you" on the demo home page, and tracking closes the loop.

Headless Chromium (Playwright) against the live server: the block's items are seen
(impressions after 1 s at >= 50% visible), one is dismissed with "Not interested"
and another clicked; all land in the database with the recomm_id of the served list. A screenshot goes to
``test-artifacts/serving/`` (git-ignored).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from project.news.models import Article
from recommender.api.throttling import RecommenderAnonThrottle
from recommender.identity import Identity
from recommender.models import Feedback, Interaction, Item, RecommendationLog
from recommender.tracking.reactions import REACTION_EVENTS, reaction_to
from tests.serving import conftest as serving
from tests.serving import factories
from tests.serving.conftest import activate_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

serving_settings = serving.serving_settings  # settings, artifact storage in tmp, fresh model store
trained_models = serving.trained_models

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "serving"
QUEUE_EMPTY = "() => JSON.parse(localStorage.getItem('recommender:events') || '[]').length === 0"
PASSWORD = "reader-password"
# fetch never answers and sendBeacon sends nothing: the tracker's send on leaving reaches no server
SILENCE_TRACKER = "() => { window.fetch = () => new Promise(() => {}); navigator.sendBeacon = () => true; }"


@pytest.fixture
def reader(trained_models, serving_settings, settings):
    """A reader of climate stories, the catalogue published, and the tiny trained model active."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    items = factories.make_catalogue()
    Article.objects.update(published_at=timezone.now() - timedelta(days=1))
    activate_model(trained_models[0])
    user = factories.make_user("reader")
    user.set_password(PASSWORD)
    user.save()
    factories.add_events(Identity(user.pk), items["climate"][:4])
    return user


def wait_for(query, seconds: float = 20.0):
    """Poll the database until ``query()`` is truthy (the tracker sends in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := query():
            return result
        time.sleep(0.2)
    return query()


def close_silently(context, page) -> None:
    """Close with no tracker request left to send: the live server outlives the test, and a
    leave-time send it answers after the test has lost its database access fails the teardown
    (and leaves the test's rows behind for the next transactional test). Aborting the route
    alone did not stop a keepalive fetch sent while the page closes."""
    try:
        page.route("**/api/recommender/events/**", lambda route: route.abort())
        page.evaluate(SILENCE_TRACKER)
    finally:
        context.close()


def test_reader_sees_the_block_and_impressions_and_click_are_stored(browser, live_server, reader):
    context = browser.new_context(viewport={"width": 1280, "height": 1600}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/login/")
        page.fill("#id_username", "reader")
        page.fill("#id_password", PASSWORD)
        page.click("form [type=submit]")
        page.wait_for_url(live_server.url + "/")

        block = page.locator(".recommender-block--recommended_for_you")
        block.wait_for()
        # a model pick says why: a read behind it, or that any reader would get it (small catalogue)
        assert re.search(r"Because you read|Popular in", block.inner_text())
        first = block.locator("[data-recommender-item]").first
        recomm_id = first.get_attribute("data-recommender-recomm-id")
        assert first.get_attribute("data-recommender-placement") == "home"
        log = RecommendationLog.objects.get(recomm_id=recomm_id)
        assert log.user_id == reader.pk and log.placement == "home"

        page.wait_for_timeout(2500)  # >= 1 s visible makes impressions; the tracker batches for 2 s
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "home-recommended.png"), full_page=True)
        impressions = wait_for(
            lambda: list(
                Interaction.objects.filter(
                    user=reader, event_type="impression", recomm_id=recomm_id
                ).values_list("item_id", "placement")
            )
        )
        assert impressions, "no impression of the block reached the server"
        assert {placement for _, placement in impressions} == {"home"}
        assert {item for item, _ in impressions} <= {entry["item"] for entry in log.items}

        rejected_row = block.locator(".recommender-item").nth(1)
        rejected = int(rejected_row.locator("[data-recommender-item]").get_attribute("data-recommender-item"))
        rejected_row.get_by_role("button", name="Not interested").click()
        rejected_row.wait_for(state="hidden")
        feedback = wait_for(lambda: Feedback.objects.filter(user=reader, item_id=rejected).first())
        assert feedback.kind == "not_interested" and feedback.recomm_id == recomm_id
        assert not Interaction.objects.filter(event_type="click", item_id=rejected).exists()

        clicked = int(first.get_attribute("data-recommender-item"))
        first.locator("a").click()
        page.wait_for_url("**/articles/**")
        click = wait_for(
            lambda: Interaction.objects.filter(user=reader, event_type="click", item_id=clicked).first()
        )
        assert click is not None, "the click never reached the server"
        assert click.recomm_id == recomm_id and click.placement == "home"

        # Leaving the article sends its read portion; wait for it so no request outlives the test.
        page.goto("about:blank")
        reads = Interaction.objects.filter(user=reader, event_type="read", item_id=clicked)
        read = wait_for(reads.first)
        assert read is not None and 0 <= read.value <= 1
    finally:
        context.close()


def test_like_and_not_for_me_toggle_and_undo_in_the_browser(browser, live_server, reader):
    """The buttons show the reaction; pressing one replaces the other, pressing it again undoes it."""
    article = Article.objects.filter(title__startswith="football").order_by("pk").first()
    item = Item.objects.get(object_id=str(article.pk))
    context = browser.new_context(viewport={"width": 1280, "height": 1200}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    reactions = Interaction.objects.filter(user=reader, item=item, event_type__in=REACTION_EVENTS)
    try:
        page.goto("/login/")
        page.fill("#id_username", "reader")
        page.fill("#id_password", PASSWORD)
        page.click("form [type=submit]")
        page.wait_for_url(live_server.url + "/")
        page.goto(article.get_absolute_url())
        like = page.locator('.reactions [data-event="like"]')
        dislike = page.locator('.reactions [data-event="dislike"]')
        assert like.get_attribute("aria-pressed") == "false"

        like.click()
        assert like.get_attribute("aria-pressed") == "true"
        assert wait_for(lambda: reaction_to(Identity(reader.pk), item.pk) == "like")
        dislike.click()
        assert (
            dislike.get_attribute("aria-pressed") == "true" and like.get_attribute("aria-pressed") == "false"
        )
        assert wait_for(lambda: reaction_to(Identity(reader.pk), item.pk) == "dislike")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "article-reaction.png"), full_page=True)
        dislike.click()
        assert dislike.get_attribute("aria-pressed") == "false"
        assert wait_for(lambda: reactions.filter(event_type="clear_reaction").exists())
        assert reaction_to(Identity(reader.pk), item.pk) is None
        page.reload()  # the state comes from the server
        assert page.locator('.reactions [aria-pressed="true"]').count() == 0
        # The reloaded page's view event: let it land, so no request is in flight at teardown.
        page.wait_for_function(QUEUE_EMPTY, timeout=20_000)
        assert list(reactions.order_by("timestamp").values_list("event_type", flat=True)) == [
            "like",
            "dislike",
            "clear_reaction",
        ]
    finally:
        close_silently(context, page)


def test_a_new_visitors_home_page_shows_each_article_once(browser, live_server, reader):
    """Logged out: the recommended and trending blocks repeat neither each other nor "Latest"."""
    for n, item in enumerate(Item.objects.order_by("pk")):
        Item.objects.filter(pk=item.pk).update(trending_score=float(n))
    context = browser.new_context(viewport={"width": 1280, "height": 1600}, base_url=live_server.url)
    page = context.new_page()
    page.route("**/api/recommender/events/**", lambda route: route.abort())  # no request outlives the test
    try:
        page.goto("/")
        links = page.eval_on_selector_all(
            ".recommender-item__link, .latest a[href*='/articles/']", "els => els.map(e => e.pathname)"
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "home-anonymous.png"), full_page=True)
        assert page.locator(".recommender-item__link").count() >= 6
        assert len(links) == len(set(links)), links
    finally:
        context.close()


def _throttled_page(browser, live_server, monkeypatch, rate: str):
    """(context, page, statuses of the events posts) for an anonymous visitor throttled at ``rate``."""
    monkeypatch.setattr(RecommenderAnonThrottle, "THROTTLE_RATES", {"recommender_anon": rate})
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/events/" in r.url else None)
    return context, page, statuses


def test_throttled_events_wait_for_retry_after_and_are_all_stored(browser, live_server, reader, monkeypatch):
    """A 429 delays the tracker's batch by its Retry-After; nothing is dropped, nothing stored twice."""
    context, page, statuses = _throttled_page(browser, live_server, monkeypatch, "1/s")
    item = Item.objects.order_by("pk").first()
    try:
        page.goto("/login/")  # a page with the tracker and no recommendation block
        for n in range(5):
            page.evaluate(
                "([item, n]) => { window.recommenderTracker.track(item, 'click', {placement: 'p' + n});"
                " window.recommenderTracker.flush(); }",
                [item.pk, n],
            )
            page.wait_for_timeout(150)
        clicks = Interaction.objects.filter(item=item, event_type="click", user__isnull=True)
        assert wait_for(lambda: clicks.count() == 5, seconds=30), statuses
        assert 429 in statuses  # it was throttled on the way
        assert sorted(clicks.values_list("placement", flat=True)) == [f"p{n}" for n in range(5)]
    finally:
        close_silently(context, page)


def test_a_throttled_batch_keeps_its_attempts_and_waits(browser, live_server, reader, monkeypatch):
    """After a 429 the batch stays queued with no attempt spent, so throttling can never drop it."""
    context, page, statuses = _throttled_page(browser, live_server, monkeypatch, "1/m")
    item = Item.objects.order_by("pk").first()
    try:
        page.goto("/login/")
        track = (
            "(item) => { window.recommenderTracker.track(item, 'click'); window.recommenderTracker.flush(); }"
        )
        page.evaluate(track, item.pk)
        page.wait_for_timeout(500)
        page.evaluate(track, item.pk)
        deadline = time.monotonic() + 10
        while 429 not in statuses and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert statuses[:2] == [201, 429], statuses
        queued = page.evaluate("() => JSON.parse(localStorage.getItem('recommender:events') || '[]')")
        assert len(queued) == 1 and queued[0]["attempts"] == 0
        page.wait_for_timeout(3000)  # the old backoff would have resent by now; Retry-After says ~60 s
        assert statuses.count(429) == 1
    finally:
        close_silently(context, page)
