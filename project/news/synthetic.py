"""A synthetic news platform: articles in topics and readers with drifting habits.

Pure Python and deterministic for a given seed and ``now``: the
``recommender_demo_seed`` command stores what :func:`generate_platform` returns.
Readers prefer one to three topics, their taste drifts over the ninety days, they
read part 2 after part 1 and follow-ups after the original, and every event a
tracker would send (impression, click, view, read with a portion, like, share,
dislike) comes in realistic ratios, after the article was published.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils.text import slugify

from project.news.vocab import GENERIC_SENTENCES, TOPICS, TopicVocabulary

DAY = 86400.0
MINUTE = 60.0
EVENTS_PER_VISIT = 5.1  # impressions + click + view + read + the occasional like/share/dislike
EXPLORATION = 0.12  # share of visits to a topic outside the reader's preferences
FOLLOW_UP_HABIT = 0.7  # chance to read a pending next part / follow-up when one is out
START_AT_PART_ONE = 0.9  # chance that a reader finding part 3 goes back to the first unread part


def this_hour() -> datetime:
    """The default "now": rounded to the hour, so two runs in the same hour store the same timestamps."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SeedConfig:
    """Sizes of the platform; ``events_per_user`` is the mean number of events of all types."""

    seed: int = 42
    articles: int = 3000
    users: int = 300
    events_per_user: int = 60
    topics: int = 20
    days: int = 90
    now: datetime = field(default_factory=lambda: this_hour())


@dataclass
class SyntheticArticle:
    """One article; ``previous`` is the index of the part or story it continues."""

    title: str
    slug: str
    summary: str
    body: str
    topics: tuple[str, ...]  # primary topic first
    published_at: datetime
    previous: int | None = None
    is_draft: bool = False
    continuations: list[int] = field(default_factory=list)  # next parts and follow-ups


@dataclass(frozen=True)
class SyntheticUser:
    """A reader whose topic preferences move from ``start`` to ``end`` over the period."""

    username: str
    start: dict[str, float]
    end: dict[str, float]

    @property
    def preferred(self) -> set[str]:
        return set(self.start) | set(self.end)


@dataclass(frozen=True)
class SyntheticEvent:
    """One tracked event, ``article``/``user`` being indexes into the platform's lists."""

    event_id: str
    user: int
    article: int
    event_type: str
    timestamp: datetime
    value: float | None
    session_id: str
    placement: str


@dataclass
class Platform:
    """Everything the seed command stores."""

    topics: list[TopicVocabulary]
    articles: list[SyntheticArticle]
    users: list[SyntheticUser]
    events: list[SyntheticEvent]


def generate_platform(config: SeedConfig) -> Platform:
    """Build the whole platform from ``config``; the same config gives the same platform."""
    if not 1 <= config.topics <= len(TOPICS):
        raise ValueError(f"topics must be between 1 and {len(TOPICS)}, got {config.topics}")
    rng = random.Random(config.seed)
    topics = list(TOPICS[: config.topics])
    articles = _ArticleWriter(rng, topics, config).write(config.articles)
    users = [_make_user(rng, i, topics) for i in range(config.users)]
    events = _History(rng, articles, config).events_for(users)
    return Platform(topics=topics, articles=articles, users=users, events=events)


# --- articles ---------------------------------------------------------------------------------------

TITLE_TEMPLATES = (
    "{E} {v} {adj} {n}",
    "{Adj} {n}: {e} {v} {n2}",
    "Why {e} {v} the {n}",
    "{E} {v} {n} as {n2} looms",
    "The {adj} {n} that {e} cannot ignore",
    "{E} {v} {e2} in {adj} {n}",
)
SUMMARY_TEMPLATES = (
    "{E} {v} the {adj} {n}, with {e2} watching the {n2} closely.",
    "Another {adj} week for {e}: the {n} and the {n2} dominate the conversation.",
    "{E} {v} {e2}, putting the {n} back in the spotlight.",
)
BODY_TEMPLATES = (
    "{E} {v} the {n} after months of {adj} debate about the {n2}.",
    "According to people close to {e}, the {n} was never in doubt.",
    "The {adj} {n} has become a talking point for {e2}.",
    "Observers point to the {n} and the {n2} as the turning point.",
    "{E} {is} expected to return to the {n} later this season.",
    "For {e2}, the {adj} {n} is only the beginning.",
    "Few expected {e} to {v0} the {n} so quickly.",
)


class _ArticleWriter:
    """Composes articles, series and follow-ups from topic vocabularies."""

    def __init__(self, rng: random.Random, topics: list[TopicVocabulary], config: SeedConfig) -> None:
        self.rng = rng
        self.topics = topics
        self.names = {t.name for t in topics}
        self.now = config.now
        self.span = config.days * DAY
        self.topic_weights = [0.6 + rng.random() for _ in topics]  # some desks publish more

    def write(self, count: int) -> list[SyntheticArticle]:
        articles: list[SyntheticArticle] = []
        while len(articles) < count:
            topic = self.rng.choices(self.topics, weights=self.topic_weights)[0]
            age = self.rng.uniform(10 * MINUTE, self.span)
            roll = self.rng.random()
            if roll < 0.08:
                self._series(articles, topic, age, count)
            else:
                self._story(articles, topic, age, count, with_follow_up=roll < 0.15)
        order = sorted(range(len(articles)), key=lambda i: articles[i].published_at)
        return _reindex(articles, order)

    def _story(
        self,
        out: list[SyntheticArticle],
        topic: TopicVocabulary,
        age: float,
        count: int,
        *,
        with_follow_up: bool,
    ) -> None:
        topics = self._tags(topic)
        words = self._words(topic)
        title = self._fill(self.rng.choice(TITLE_TEMPLATES), words)
        first = self._add(out, title, topics, age, words, intro="")
        if with_follow_up and len(out) < count:
            later = age - self.rng.uniform(1, 14) * DAY
            if later > 5 * MINUTE:
                follow = self._add(
                    out,
                    f"Follow-up: {title}",
                    topics,
                    later,
                    self._words(topic, words),
                    intro=f"This follows our earlier report, {title}.",
                )
                self._link(out, first, follow)

    def _series(self, out: list[SyntheticArticle], topic: TopicVocabulary, age: float, count: int) -> None:
        topics = self._tags(topic)
        words = self._words(topic)
        name = self._fill("Inside the {n}: {e} and the {adj} {n2}", words)
        parts = self.rng.randint(2, 4)
        previous: int | None = None
        for part in range(1, parts + 1):
            if len(out) >= count or age < 5 * MINUTE:
                break
            index = self._add(
                out,
                f"{name} (Part {part})",
                topics,
                age,
                self._words(topic, words),
                intro=f"This is part {part} of our {parts}-part series on the {words['n']}.",
            )
            if previous is not None:
                self._link(out, previous, index)
            previous = index
            age -= self.rng.uniform(1, 5) * DAY

    def _add(
        self,
        out: list[SyntheticArticle],
        title: str,
        topics: tuple[str, ...],
        age: float,
        words: dict[str, str],
        *,
        intro: str,
    ) -> int:
        topic = next(t for t in self.topics if t.name == topics[0])
        summary = self._fill(self.rng.choice(SUMMARY_TEMPLATES), words)
        sentences = [intro] if intro else []
        for template in self.rng.sample(BODY_TEMPLATES, self.rng.randint(3, 5)):
            sentences.append(self._fill(template, self._words(topic, words)))
        for extra in topics[1:]:
            other = next(t for t in self.topics if t.name == extra)
            sentences.append(self._fill(self.rng.choice(BODY_TEMPLATES), self._words(other)))
        sentences.append(self.rng.choice(GENERIC_SENTENCES))
        index = len(out)
        out.append(
            SyntheticArticle(
                title=title,
                slug=f"{slugify(title)[:200]}-{index}",
                summary=summary,
                body=" ".join(sentences),
                topics=topics,
                published_at=self.now - timedelta(seconds=round(age)),
                is_draft=self.rng.random() < 0.005,
            )
        )
        return index

    def _link(self, out: list[SyntheticArticle], earlier: int, later: int) -> None:
        out[later].previous = earlier
        out[earlier].continuations.append(later)

    def _tags(self, topic: TopicVocabulary) -> tuple[str, ...]:
        related = [name for name in topic.related if name in self.names]
        if related and self.rng.random() < 0.15:
            return topic.name, self.rng.choice(related)
        return (topic.name,)

    def _words(self, topic: TopicVocabulary, keep: dict[str, str] | None = None) -> dict[str, str]:
        """Pick words for templates; ``keep`` carries a story's main entity and noun into its sentences."""
        rng = self.rng
        e, e2 = rng.sample(topic.entities, 2)
        n, n2 = rng.sample(topic.nouns, 2)
        verb = rng.choice(topic.verbs)
        if keep:
            e, n = keep["e"], keep["n"]
        plural = _is_plural(e)
        return {
            "e": e,
            "e2": e2,
            "n": n,
            "n2": n2,
            "adj": rng.choice(topic.adjectives),
            "v": _base_form(verb) if plural else verb,
            "v0": _base_form(verb),
            "is": "are" if plural else "is",
        }

    @staticmethod
    def _fill(template: str, words: dict[str, str]) -> str:
        text = template.format(E=_cap(words["e"]), Adj=_cap(words["adj"]), **words)
        return _cap(text)


def _reindex(articles: list[SyntheticArticle], order: list[int]) -> list[SyntheticArticle]:
    """Put articles in publication order, renumbering links and slugs."""
    new_index = {old: new for new, old in enumerate(order)}
    result = []
    for new, old in enumerate(order):
        article = articles[old]
        article.slug = f"{article.slug.rsplit('-', 1)[0]}-{new}"
        article.previous = None if article.previous is None else new_index[article.previous]
        article.continuations = [new_index[c] for c in article.continuations]
        result.append(article)
    return result


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _is_plural(subject: str) -> bool:
    """'doctors', 'the North Sea fields' are plural; 'Wall Street', 'the IPCC', 'Alcaraz' are not."""
    last = subject.split()[-1]
    return last.islower() and last.endswith("s") and not last.endswith("ss")


def _base_form(verb: str) -> str:
    """'beats' -> 'beat', 'draws with' -> 'draw with': good enough for the templates' verbs."""
    head, _, rest = verb.partition(" ")
    if head.endswith("ies"):
        head = head[:-3] + "y"
    elif head.endswith(("ches", "shes", "sses", "xes")):
        head = head[:-2]
    elif head.endswith("s"):
        head = head[:-1]
    return f"{head} {rest}".strip()


# --- readers and their histories ---------------------------------------------------------------------


def _make_user(rng: random.Random, index: int, topics: list[TopicVocabulary]) -> SyntheticUser:
    names = [t.name for t in topics]
    k = min(len(names), rng.choices((1, 2, 3), weights=(0.35, 0.4, 0.25))[0])
    start_topics = rng.sample(names, k)
    start = _normalise({name: 0.5 + rng.random() for name in start_topics})
    end_topics = list(start_topics)
    outside = [n for n in names if n not in start_topics]
    if outside and rng.random() < 0.6:  # taste drifts: one interest is replaced by a new one
        end_topics[rng.randrange(k)] = rng.choice(outside)
    end = _normalise({name: 0.5 + rng.random() for name in end_topics})
    return SyntheticUser(username=f"user{index + 1:03d}", start=start, end=end)


def _normalise(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: round(w / total, 4) for name, w in weights.items()}


class _History:
    """Walks each reader through the period, visit by visit, emitting tracker events."""

    def __init__(self, rng: random.Random, articles: Sequence[SyntheticArticle], config: SeedConfig) -> None:
        self.rng = rng
        self.articles = articles
        self.config = config
        self.now = config.now
        self.start = config.now - timedelta(days=config.days)
        # per topic: publication offsets (seconds since start) and article indexes, in publication order
        self.by_topic: dict[str, tuple[list[float], list[int]]] = {}
        for index, article in enumerate(articles):
            if article.is_draft:
                continue
            offset = (article.published_at - self.start).total_seconds()
            times, ids = self.by_topic.setdefault(article.topics[0], ([], []))
            times.append(offset)
            ids.append(index)
        self.all_ids = sorted(
            (i for ids in (v[1] for v in self.by_topic.values()) for i in ids),
            key=lambda i: articles[i].published_at,
        )
        self.all_times = [(articles[i].published_at - self.start).total_seconds() for i in self.all_ids]

    def events_for(self, users: Sequence[SyntheticUser]) -> list[SyntheticEvent]:
        raw: list[tuple[float, int, int, str, float | None, str, str]] = []
        for user_index, user in enumerate(users):
            raw.extend(self._user_events(user_index, user))
        raw.sort(key=lambda e: (e[0], e[1]))
        seed = self.config.seed
        return [
            SyntheticEvent(
                event_id=f"demo-{seed}-{n:08d}",
                user=u,
                article=a,
                event_type=kind,
                timestamp=self.start + timedelta(seconds=round(t, 3)),
                value=value,
                session_id=session,
                placement=placement,
            )
            for n, (t, u, a, kind, value, session, placement) in enumerate(raw)
        ]

    def _user_events(self, user_index: int, user: SyntheticUser):
        rng = self.rng
        span = self.config.days * DAY
        mean_factor = math.exp(0.5**2 / 2)  # mean of the log-normal activity multiplier
        target = max(8, round(self.config.events_per_user * rng.lognormvariate(0, 0.5) / mean_factor))
        visits = max(2, round(target / EVENTS_PER_VISIT))
        joined = rng.uniform(0, span / 3)
        sessions = max(1, round(visits / 2.5))
        # mean pause between sessions, leaving slack so that most histories end before "now"
        session_gap = 0.8 * max(span - joined - sessions * 30 * MINUTE, DAY) / (sessions + 1)
        t = joined + rng.expovariate(1 / session_gap)
        session = 0
        seen: set[int] = set()
        pending: list[int] = []
        out = []
        for _ in range(visits):
            if t > span - 10 * MINUTE:
                break
            article = self._choose(user, t, seen, pending)
            if article is not None:
                seen.add(article)
                out.extend(self._visit(user_index, user, article, t, f"u{user_index}-s{session}"))
                pending.extend(c for c in self.articles[article].continuations if c not in seen)
            if rng.random() < 0.6:  # next article in the same session
                t += rng.uniform(5, 12) * MINUTE
            else:
                t += rng.expovariate(1 / session_gap) + 30 * MINUTE
                session += 1
        return out

    def _choose(self, user: SyntheticUser, t: float, seen: set[int], pending: list[int]) -> int | None:
        rng = self.rng
        ready = [a for a in pending if a not in seen and self._offset(a) <= t - MINUTE]
        if ready and rng.random() < FOLLOW_UP_HABIT:
            pending.remove(ready[0])
            return ready[0]
        if rng.random() < EXPLORATION:
            topic = rng.choice(list(self.by_topic))
        else:
            mix = t / (self.config.days * DAY)
            weights = {name: (1 - mix) * w for name, w in user.start.items()}
            for name, w in user.end.items():
                weights[name] = weights.get(name, 0.0) + mix * w
            names = [n for n in weights if n in self.by_topic]
            if not names:
                return None
            topic = rng.choices(names, weights=[weights[n] for n in names])[0]
        times, ids = self.by_topic[topic]
        available = bisect_right(times, t - MINUTE)
        for _ in range(4):  # newest first, with a long tail into the archive
            if available == 0:
                return None
            pick = ids[max(0, available - 1 - int(rng.expovariate(1 / 15)))]
            if pick not in seen:
                return self._start_of_story(pick, seen) if rng.random() < START_AT_PART_ONE else pick
        return None

    def _start_of_story(self, article: int, seen: set[int]) -> int:
        """The earliest unread article of the series or story that ``article`` continues."""
        previous = self.articles[article].previous
        while previous is not None and previous not in seen:
            article, previous = previous, self.articles[previous].previous
        return article

    def _offset(self, article: int) -> float:
        return (self.articles[article].published_at - self.start).total_seconds()

    def _visit(self, user_index: int, user: SyntheticUser, article: int, t: float, session: str):
        rng = self.rng
        likes_topic = self.articles[article].topics[0] in user.preferred
        placement = rng.choices(("home", "tag", "article"), weights=(0.55, 0.2, 0.25))[0]
        events = []
        # the block the reader saw: the article plus a few other recent ones
        shown = [article]
        recent = bisect_right(self.all_times, t - MINUTE)
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            other = self.all_ids[max(0, recent - 1 - rng.randrange(60))]
            if other not in shown:
                shown.append(other)
        for position, item in enumerate(shown):
            events.append((t - 5 + position * 0.01, user_index, item, "impression", None, session, placement))
            other_topic = self.articles[item].topics[0]
            if item != article and other_topic not in user.preferred and rng.random() < 0.03:
                events.append((t - 4, user_index, item, "dislike", None, session, placement))
        if rng.random() < 0.65:
            events.append((t - 2, user_index, article, "click", None, session, placement))
        events.append((t, user_index, article, "view", None, session, placement))
        if rng.random() < 0.88:
            portion = rng.betavariate(5, 2) if likes_topic else rng.betavariate(2, 4)
            read_at = t + 5 + portion * 240
            events.append((read_at, user_index, article, "read", round(portion, 3), session, placement))
            if portion > 0.6 and rng.random() < (0.12 if likes_topic else 0.03):
                events.append((read_at + 1, user_index, article, "like", None, session, placement))
            if portion > 0.7 and rng.random() < 0.04:
                events.append((read_at + 2, user_index, article, "share", None, session, placement))
            if not likes_topic and portion < 0.25 and rng.random() < 0.25:
                events.append((read_at + 1, user_index, article, "dislike", None, session, placement))
        return events
