"""What `make demo` sets up: stored trending scores the site serves, and a trained model it reports."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.test import Client
from django.utils import timezone

from recommender.caching import cache
from recommender.management.commands._output import report
from recommender.models import Interaction, Item, ModelVersion
from recommender.serving import model_store, related
from recommender.serving.candidates import trending_candidates
from tests.factories import isolate_model_state
from tests.workers.factories import TINY_TRAIN_CONFIG

pytestmark = pytest.mark.django_db

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
# Big enough that some reading falls in the last TRENDING_WINDOW_HOURS (the seed's histories
# end before its "now", the current hour); seconds to store.
SEED_FLAGS = ["--articles", "300", "--users", "60", "--events-per-user", "40", "--seed", "7"]


@pytest.fixture(autouse=True)
def isolated(settings, tmp_path):
    """Artifacts in a tmp dir, fast password hashing, no cached lists or model between tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    isolate_model_state(settings, tmp_path)
    yield
    cache().clear()
    model_store.invalidate()


@pytest.fixture
def seeded() -> None:
    """The demo's first setup steps (`make demo` order): seed, then mirror the articles."""
    call_command("recommender_demo_seed", *SEED_FLAGS)
    call_command("recommender_sync")


def _demo_commands() -> list[str]:
    """The `manage.py` commands of the Makefile's demo recipe, in order, with their arguments."""
    recipe = MAKEFILE.read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"manage\.py (recommender_\w+[^;\n]*|runserver)", recipe)


def _stored_order(limit: int) -> list[int]:
    return list(
        Item.objects.filter(trending_score__gt=0)
        .order_by("-trending_score", "-pk")
        .values_list("pk", flat=True)[:limit]
    )


def _block_items(html: str, block: str) -> list[tuple[int, str]]:
    """(item id, reason) of each item of one rendered block, in page order."""
    start = html.index(f'data-recommender-block="{block}"')
    section = html[start : html.index("</section>", start)]
    return [
        (int(pk), reason)
        for pk, reason in re.findall(
            r'data-recommender-item="(\d+)"[^>]*data-recommender-reason="(\w+)"', section
        )
    ]


def test_make_demo_scores_trending_after_seeding_and_training() -> None:
    names = [command.split()[0] for command in _demo_commands()]
    assert names.index("recommender_demo_seed") < names.index("recommender_trending")
    assert names.index("recommender_train") < names.index("recommender_trending") < names.index("runserver")
    train = next(c for c in _demo_commands() if c.startswith("recommender_train"))
    assert "--max-minutes" in train  # early stopping inside a time budget, not a fixed epoch count


def test_trending_command_stores_the_scores_the_candidates_serve(seeded, capsys) -> None:
    assert not Item.objects.filter(trending_score__gt=0).exists()  # the seed stores none itself

    call_command("recommender_trending")

    scored = dict(Item.objects.filter(trending_score__gt=0).values_list("pk", "trending_score"))
    out = capsys.readouterr().out
    assert len(scored) >= 5
    assert f"{len(scored)} item(s) have a trending score" in out
    assert f"{max(scored.values()):.3f}" in out
    assert [c.item_id for c in trending_candidates(k=len(scored))] == _stored_order(len(scored))
    assert all(c.reason == "trending" for c in trending_candidates(k=len(scored)))


def test_trending_block_ranks_by_the_stored_scores(seeded, settings) -> None:
    """The block is fed by the stored scores; with the shared blend neutral it is their order.

    Freshness and MMR diversity (tunable, applied to every list) may still swap near-ties.
    """
    call_command("recommender_trending")
    settings.RECOMMENDER = {**settings.RECOMMENDER, "FRESHNESS_WEIGHT": 0.0, "DIVERSITY_LAMBDA": 1.0}
    top = _stored_order(5)

    assert [rec.item.pk for rec in related.trending(limit=5).items] == top

    html = Client().get("/").content.decode()
    shown = [pk for pk, reason in _block_items(html, "trending") if reason == "trending"]
    assert shown, "the Trending block served no item from the stored scores"
    scores = dict(Item.objects.filter(pk__in=shown).values_list("pk", "trending_score"))
    assert all(scores[pk] > 0 for pk in shown)
    assert shown == sorted(shown, key=lambda pk: (-scores[pk], -pk))


def test_trending_command_says_when_nothing_is_recent(seeded, capsys) -> None:
    """Engagement older than the window leaves every score at 0, and the block has nothing to count."""
    Interaction.objects.update(timestamp=timezone.now() - timedelta(days=30))
    call_command("recommender_trending")
    assert "No item has a trending score" in capsys.readouterr().out
    assert not Item.objects.filter(trending_score__gt=0).exists()
    assert trending_candidates(k=5) == []


def test_train_command_prints_validation_ndcg_and_time(seeded, settings, capsys) -> None:
    settings.RECOMMENDER = {**settings.RECOMMENDER, "TRAIN_CONFIG": TINY_TRAIN_CONFIG}

    call_command("recommender_train", "--max-minutes", "1")

    version = ModelVersion.objects.get()
    out = capsys.readouterr().out
    ndcg = version.metrics["val_ndcg@10"]
    assert re.search(rf"validation NDCG@10 {ndcg:.4f} at epoch \d+ \(popularity baseline 0\.\d{{4}}\)", out)
    assert f"training time {version.data_summary['seconds']:.1f}s" in out
    assert re.search(r"\(\d+\.\ds for the whole command\)", out)
    assert version.is_active and "activated" in out


def test_report_says_when_there_was_nothing_to_validate_on() -> None:
    """A refresh on readers with one or two events has no held-out event: the line says so."""
    version = ModelVersion(
        name="refresh-x", status="succeeded", device="cpu", metrics={"best_epoch": 1.0},
        data_summary={"epochs_run": 2, "users": 3, "items": 9, "seconds": 0.42},
    )  # fmt: skip
    command = BaseCommand(stdout=StringIO())
    report(command, version)
    out = command.stdout.getvalue()
    assert "validation NDCG@10 - (no reader with three events or more to hold out)" in out
    assert "training time 0.4s\n" in out and "not activated: not requested" in out


def test_demo_train_config_is_a_valid_early_stopping_config() -> None:
    """The demo's TRAIN_CONFIG builds (no unknown keys) and stops on validation before its epoch cap."""
    from recommender.training.runs import make_config

    config = make_config({"max_minutes": 1.5})
    assert config.patience < config.epochs
    assert config.max_minutes == 1.5
