"""The demo seed: a deterministic synthetic platform whose content and histories carry signal."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from project.news.models import Article, Topic
from project.news.synthetic import Platform, SeedConfig, generate_platform
from project.news.vocab import TOPIC_BY_NAME
from recommender.models import Interaction

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SMALL = {"articles": 120, "users": 10, "events_per_user": 30}


@pytest.fixture(scope="module")
def platform() -> Platform:
    return generate_platform(SeedConfig(seed=7, articles=600, users=40, events_per_user=60, now=NOW))


def test_same_seed_gives_the_same_platform() -> None:
    first = generate_platform(SeedConfig(seed=3, now=NOW, **SMALL))
    again = generate_platform(SeedConfig(seed=3, now=NOW, **SMALL))
    other = generate_platform(SeedConfig(seed=4, now=NOW, **SMALL))
    assert first == again
    assert [a.title for a in first.articles] != [a.title for a in other.articles]


def test_sizes_follow_the_flags() -> None:
    platform = generate_platform(
        SeedConfig(seed=1, articles=250, users=30, events_per_user=40, topics=6, now=NOW)
    )
    assert len(platform.articles) == 250
    assert len(platform.users) == 30
    assert {t for a in platform.articles for t in a.topics} <= {t.name for t in platform.topics}
    assert len(platform.topics) == 6
    assert 0.7 * 30 * 40 <= len(platform.events) <= 1.3 * 30 * 40


def test_topic_count_is_validated() -> None:
    with pytest.raises(ValueError, match="topics"):
        generate_platform(SeedConfig(topics=0, now=NOW))


def _words(text: str) -> Counter:
    return Counter(w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3)


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(v * b.get(w, 0.0) for w, v in a.items())
    return dot / (
        math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values())) or 1.0
    )


def test_articles_of_a_topic_share_vocabulary(platform: Platform) -> None:
    """A TF-IDF nearest-centroid classifier recovers the topic from title and summary alone."""
    docs = [_words(f"{a.title} {a.summary}") for a in platform.articles]
    frequency = Counter(w for doc in docs for w in doc)
    idf = {w: math.log(len(docs) / n) for w, n in frequency.items()}
    vectors = [{w: c * idf[w] for w, c in doc.items()} for doc in docs]
    centroids: dict[str, Counter] = defaultdict(Counter)
    for article, vector in zip(platform.articles[::2], vectors[::2], strict=True):
        centroids[article.topics[0]].update(vector)
    held_out = list(zip(platform.articles[1::2], vectors[1::2], strict=True))
    correct = sum(max(centroids, key=lambda t: _cosine(v, centroids[t])) == a.topics[0] for a, v in held_out)
    assert correct / len(held_out) > 0.9


def test_articles_use_their_topic_words(platform: Platform) -> None:
    for article in platform.articles[:100]:
        vocabulary = TOPIC_BY_NAME[article.topics[0]]
        text = f"{article.title} {article.summary} {article.body}"
        assert any(e in text for e in vocabulary.entities)
        assert any(n in text for n in vocabulary.nouns)


def test_series_and_follow_ups_link_earlier_articles(platform: Platform) -> None:
    linked = [(i, a) for i, a in enumerate(platform.articles) if a.previous is not None]
    assert len(linked) > 0.05 * len(platform.articles)
    assert any(a.title.startswith("Follow-up: ") for _, a in linked)
    assert any("(Part 2)" in a.title for _, a in linked)
    for index, article in linked:
        earlier = platform.articles[article.previous]
        assert earlier.published_at < article.published_at
        assert index in earlier.continuations


def test_events_are_chronological_and_after_publication(platform: Platform) -> None:
    assert len({e.event_id for e in platform.events}) == len(platform.events)
    last: dict[int, datetime] = {}
    for event in platform.events:
        assert event.timestamp >= platform.articles[event.article].published_at
        assert event.timestamp <= NOW
        assert event.timestamp >= last.get(event.user, event.timestamp)
        last[event.user] = event.timestamp
        assert not platform.articles[event.article].is_draft


def test_all_event_types_in_realistic_ratios(platform: Platform) -> None:
    kinds = Counter(e.event_type for e in platform.events)
    assert set(kinds) == {"impression", "view", "click", "read", "like", "share", "dislike"}
    assert kinds["impression"] > kinds["view"] > kinds["click"] > kinds["like"] > kinds["share"]
    assert kinds["view"] > kinds["dislike"]
    reads = [e.value for e in platform.events if e.event_type == "read"]
    assert all(0 <= v <= 1 for v in reads)


def test_histories_follow_preferences_that_drift(platform: Platform) -> None:
    views = [e for e in platform.events if e.event_type == "view"]
    in_preferences = sum(
        platform.articles[e.article].topics[0] in platform.users[e.user].preferred for e in views
    )
    assert in_preferences / len(views) > 0.75
    drifting = [i for i, u in enumerate(platform.users) if set(u.end) - set(u.start)]
    assert drifting
    # a drifting reader's new interest shows up late in the history rather than early
    early = late = 0
    for i in drifting:
        new = set(platform.users[i].end) - set(platform.users[i].start)
        own = [e for e in views if e.user == i]
        half = len(own) // 2
        early += sum(platform.articles[e.article].topics[0] in new for e in own[:half])
        late += sum(platform.articles[e.article].topics[0] in new for e in own[half:])
    assert late > early


def test_readers_read_part_one_before_part_two(platform: Platform) -> None:
    viewed_at: dict[tuple[int, int], datetime] = {}
    for e in platform.events:
        if e.event_type == "view":
            viewed_at.setdefault((e.user, e.article), e.timestamp)
    pairs = [
        (viewed_at[(u, a.previous)], t)
        for (u, i), t in viewed_at.items()
        if (a := platform.articles[i]).previous is not None and (u, a.previous) in viewed_at
    ]
    assert len(pairs) >= 10
    in_order = sum(before < after for before, after in pairs)
    assert in_order / len(pairs) > 0.8


# --- the command, against the database ---------------------------------------------------------------

SMALL_FLAGS = [
    "--articles",
    "120",
    "--users",
    "10",
    "--events-per-user",
    "30",
    "--topics",
    "8",
    "--seed",
    "5",
]


def _snapshot() -> tuple[list, list]:
    articles = list(
        Article.objects.order_by("slug").values_list("slug", "title", "previous__slug", "is_draft")
    )
    events = list(
        Interaction.objects.order_by("event_id").values_list(
            "event_id", "user__username", "item__title", "event_type", "value", "session_id", "placement"
        )
    )
    return articles, events


@pytest.mark.django_db
def test_command_seeds_the_requested_sizes_and_is_deterministic() -> None:
    call_command("recommender_demo_seed", *SMALL_FLAGS)
    assert Article.objects.count() == 120
    assert Topic.objects.count() == 8
    readers = get_user_model().objects.filter(username__startswith="user")
    assert readers.count() == 10
    assert Interaction.objects.filter(user__in=readers).count() > 150
    first = _snapshot()

    call_command("recommender_demo_seed", *SMALL_FLAGS, "--flush")
    assert _snapshot() == first
    assert Article.objects.count() == 120


@pytest.mark.django_db
def test_command_creates_accounts_that_can_sign_in() -> None:
    call_command("recommender_demo_seed", *SMALL_FLAGS)
    admin = authenticate(username="admin", password="admin-pass-123")
    assert admin is not None and admin.is_staff and admin.is_superuser
    assert authenticate(username="user001", password="demo-pass-123") is not None


@pytest.mark.django_db
def test_command_refuses_to_seed_twice_unless_asked() -> None:
    call_command("recommender_demo_seed", *SMALL_FLAGS)
    with pytest.raises(CommandError, match="--flush"):
        call_command("recommender_demo_seed", *SMALL_FLAGS)
    call_command("recommender_demo_seed", *SMALL_FLAGS, "--if-empty")
    assert Article.objects.count() == 120
