"""The feedback queue and the catalogue admin: filters, counts, bulk actions and their effect on serving."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from recommender.identity import Identity
from recommender.models import EditorialRule, Feedback, Item
from recommender.serving.recommend import recommend
from tests.admin import factories

pytestmark = pytest.mark.django_db

QUEUE = "admin:recommender_feedback_changelist"


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def editor() -> Client:
    client = Client()
    client.force_login(
        factories.user("editor", perms=("view_feedback", "change_feedback", "add_editorialrule", "view_item"))
    )
    return client


@pytest.fixture
def items() -> list[Item]:
    return [
        factories.article_item("Spammy listicle", topics=("Football",), trending=9.0),
        factories.article_item("Good analysis", topics=("Climate",), trending=5.0),
        factories.article_item("Quiet report", topics=("Space",), trending=1.0),
    ]


def act(client: Client, action: str, feedback: list[Feedback]):
    return client.post(reverse(QUEUE), {"action": action, "_selected_action": [f.pk for f in feedback]})


def test_queue_filters_and_counts_per_item(editor: Client, items: list[Item]) -> None:
    factories.feedback(items[0], reason="clickbait", visitor="a")
    factories.feedback(items[0], kind=Feedback.Kind.NOT_INTERESTED, visitor="b")
    factories.feedback(items[1], reason="wrong facts", visitor="c")
    page = editor.get(reverse(QUEUE))
    assert page.status_code == 200
    rows = page.context["cl"].result_list
    counts = {f.item_id: f.n_item_feedback for f in rows}
    assert counts == {items[0].pk: 2, items[1].pk: 1}

    def shown(query: str) -> set[int]:
        return {f.pk for f in editor.get(reverse(QUEUE) + query).context["cl"].result_list}

    football = items[0].tags.get()
    assert shown(f"?tag={football.pk}") == set(
        Feedback.objects.filter(item=items[0]).values_list("pk", flat=True)
    )
    assert len(shown("?kind__exact=report")) == 2
    assert len(shown("?has_reason=no")) == 1
    assert len(shown(f"?item={items[1].pk}")) == 1
    assert len(shown("?status__exact=new")) == 3


def test_block_from_feedback_removes_the_item_from_recommendations(editor: Client, items: list[Item]) -> None:
    visitor = Identity(user_id=None, visitor_id="fresh-visitor")
    assert items[0].pk in [r.item.pk for r in recommend(visitor, limit=3)]
    report = factories.feedback(items[0], reason="spam")
    response = act(editor, "block_item", [report])
    assert response.status_code == 302
    rule = EditorialRule.objects.get()
    assert (rule.action, rule.item_id, rule.placement, rule.is_enabled) == ("block", items[0].pk, "", True)
    report.refresh_from_db()
    assert report.status == Feedback.Status.ACTIONED and report.reviewed_by.username == "editor"
    # A list computed after the block (cached lists of other identities expire after CACHE_TIMEOUT).
    served = [r.item.pk for r in recommend(Identity(user_id=None, visitor_id="other-visitor"), limit=3)]
    assert items[0].pk not in served and served
    act(editor, "block_item", [report])  # blocking again adds no second rule
    assert EditorialRule.objects.count() == 1


def test_bury_and_mark_reviewed(editor: Client, items: list[Item]) -> None:
    first = factories.feedback(items[1], reason="meh")
    second = factories.feedback(items[2], kind=Feedback.Kind.NOT_INTERESTED)
    act(editor, "bury_item", [first])
    assert EditorialRule.objects.get().action == "bury"
    act(editor, "mark_reviewed", [first, second])
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Feedback.Status.ACTIONED  # already handled: reviewing keeps "actioned"
    assert second.status == Feedback.Status.REVIEWED and second.reviewed_at is not None


def test_open_item_goes_to_the_item_or_the_filtered_list(editor: Client, items: list[Item]) -> None:
    one = factories.feedback(items[0])
    two = factories.feedback(items[1])
    single = act(editor, "open_item", [one])
    assert single["Location"] == reverse("admin:recommender_item_change", args=[items[0].pk])
    several = act(editor, "open_item", [one, two])
    assert several["Location"].endswith(f"?id__in={items[0].pk},{items[1].pk}")
    assert editor.get(several["Location"]).context["cl"].result_count == 2


def test_tag_suggestions_reviewed_in_bulk(items: list[Item]) -> None:
    from recommender.models import ItemTag

    climate = factories.tag("Energy")
    pending = [
        ItemTag.objects.create(item=item, tag=climate, source="automatic", status="pending", weight=0.4)
        for item in items[:2]
    ]
    editorial = ItemTag.objects.filter(source="editorial").first()
    client = Client()
    client.force_login(factories.user("tagger", perms=("view_itemtag", "change_itemtag")))
    url = reverse("admin:recommender_itemtag_changelist")
    listed = client.get(url + "?source__exact=automatic&status__exact=pending").context["cl"].result_list
    assert {t.pk for t in listed} == {t.pk for t in pending}
    client.post(url, {"action": "reject", "_selected_action": [pending[0].pk, editorial.pk]})
    client.post(url, {"action": "accept", "_selected_action": [pending[1].pk]})
    statuses = dict(ItemTag.objects.filter(pk__in=[t.pk for t in pending]).values_list("pk", "status"))
    assert statuses == {pending[0].pk: "rejected", pending[1].pk: "accepted"}
    editorial.refresh_from_db()
    assert editorial.status == "accepted"  # editorial tags are not the embedder's to reject


def test_items_show_embedding_status_and_reembed_queues_the_task(
    items: list[Item], monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from recommender import tasks

    Item.objects.filter(pk=items[0].pk).update(embedding=b"\0" * 8, embedding_dim=2, embedded_hash="old")
    Item.objects.filter(pk=items[1].pk).update(
        embedding=b"\0" * 8, embedding_dim=2, embedded_hash=items[1].content_hash
    )
    client = Client()
    client.force_login(factories.user("librarian", perms=("view_item", "change_item")))
    url = reverse("admin:recommender_item_changelist")
    statuses = {i.pk: i for i in client.get(url).context["cl"].result_list}
    admin_obj = client.get(url).context["cl"].model_admin
    assert admin_obj.embedding_status(statuses[items[0].pk]) == "stale"
    assert admin_obj.embedding_status(statuses[items[1].pk]) == "current"
    assert admin_obj.embedding_status(statuses[items[2].pk]) == "missing"
    assert client.get(url + "?embedding=missing").context["cl"].result_count == 1

    queued = []
    monkeypatch.setattr(tasks.embed_items, "delay", lambda **kwargs: queued.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "reembed", "_selected_action": [items[1].pk]})
    assert queued == [{"ids": [items[1].pk]}]
    assert Item.objects.get(pk=items[1].pk).embedded_hash == ""
