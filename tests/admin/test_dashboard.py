"""Dashboard numbers (CTR, coverage, fallbacks, exposure, model history) and the SVG they are drawn as."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recommender.admin import stats
from recommender.admin.charts import Series, bar_chart, line_chart
from recommender.admin.models_registry import training_curves
from recommender.models import Interaction, ModelVersion, RecommendationLog
from tests.admin import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def served() -> list:
    """Two days of events on two placements, three served lists, two trained versions."""
    items = [
        factories.article_item("Goal!", topics=("Football",)),
        factories.article_item("Ice melts", topics=("Climate",)),
        factories.article_item("Mars", topics=("Space",)),
        factories.article_item("Never served", topics=("Space",)),
    ]
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    events = [
        ("home", "impression", now, 4),
        ("home", "click", now, 1),
        ("article", "impression", now, 2),
        ("article", "click", now, 2),
        ("home", "impression", yesterday, 10),
        ("home", "view", now, 5),  # not an impression or a click: not counted
        ("", "impression", now, 3),  # no placement (a page view): not counted
    ]
    n = 0
    for placement, event_type, when, count in events:
        for _ in range(count):
            n += 1
            Interaction.objects.create(
                event_id=f"e{n}",
                visitor_id="v",
                item=items[n % 3],
                event_type=event_type,
                placement=placement,
                timestamp=when,
            )
    lists = [
        (now, [(items[0], "personalized"), (items[1], "trending")]),
        (now, [(items[0], "personalized"), (items[2], "fresh")]),
        (yesterday, [(items[1], "personalized"), (items[0], "personalized")]),
    ]
    for k, (when, entries) in enumerate(lists):
        RecommendationLog.objects.create(
            recomm_id=f"r{k}",
            visitor_id="v",
            placement="home",
            created_at=when,
            items=[
                {"item": i.pk, "position": p, "reason": r, "score": 1.0} for p, (i, r) in enumerate(entries)
            ],
        )
    for k, ndcg in enumerate((0.05, 0.08)):
        ModelVersion.objects.create(
            name=f"v{k}", status="succeeded", metrics={"val_ndcg@10": ndcg, "val_hr@10": 0.2}
        )
    ModelVersion.objects.create(name="broken", status="failed")
    return items


def test_placement_stats_count_impressions_clicks_and_ctr(served) -> None:
    dates, series = stats.placement_stats(7)
    assert len(dates) == 7 and dates[-1] == timezone.localdate()
    by_name = {s.placement: s for s in series}
    assert set(by_name) == {"home", "article"}
    assert by_name["home"].impressions[-2:] == [10, 4]
    assert by_name["home"].clicks[-1] == 1
    assert by_name["home"].ctr[-2:] == [0.0, 0.25]
    assert by_name["article"].ctr[-1] == 1.0
    assert by_name["article"].ctr[0] is None  # no impressions that day: no rate, not 0


def test_served_summary_coverage_fallbacks_and_exposure(served) -> None:
    summary = stats.served_summary(7)
    assert summary.lists[-2:] == [1, 2]
    assert summary.coverage[-1] == pytest.approx(3 / 4)  # 3 of 4 active items served today
    assert summary.coverage[-2] == pytest.approx(2 / 4)
    assert summary.total_coverage == pytest.approx(3 / 4)
    assert summary.fallback_share[-1] == pytest.approx(2 / 4)
    assert summary.fallback_share[-2] == 0.0
    assert summary.fallback_share[0] is None
    exposure = dict(stats.exposure_by_tag(summary.exposure))
    assert exposure == pytest.approx({"Football": 3 / 6, "Climate": 2 / 6, "Space": 1 / 6})


def test_model_metric_history_lists_succeeded_versions_oldest_first(served) -> None:
    history = stats.model_metric_history()
    assert history.names == ["v0", "v1"]
    assert history.created == sorted(history.created) and len(history.created) == 2
    assert history.values["val_ndcg@10"] == [0.05, 0.08]


def test_dashboard_page_renders_every_chart_as_svg(served) -> None:
    client = Client()
    client.force_login(factories.user("analyst", perms=("view_recommendationlog",)))
    page = client.get(reverse("admin:recommender_dashboard"), {"days": 7})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg class="rec-chart') == 7
    assert html.count('class="rec-series"') >= 6  # impressions, clicks, ctr x 2 placements at least
    assert html.count('class="rec-bar"') == 3
    assert "No data yet" not in html
    assert client.get(reverse("admin:recommender_dashboard"), {"days": "nonsense"}).status_code == 200


def test_dashboard_on_an_empty_site_says_so() -> None:
    client = Client()
    client.force_login(factories.user("analyst", perms=("view_recommendationlog",)))
    html = client.get(reverse("admin:recommender_dashboard")).content.decode()
    assert html.count("No data yet") == 7


def test_charts_escape_labels_and_skip_gaps() -> None:
    svg = line_chart("t", ["a", "b", "c"], [Series("<script>x</script>", [1, None, 3])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'class="rec-series"' not in svg  # two points separated by a gap: no segment to draw
    assert svg.count("<circle") == 2
    assert "&lt;b&gt;" in bar_chart("t", [("<b>", 0.5)], percent=True)


def test_training_curves_plot_loss_and_metrics() -> None:
    history = [{"epoch": 1, "loss": 5.0, "val_ndcg@10": 0.01}, {"epoch": 2, "loss": 4.0, "val_ndcg@10": 0.03}]
    charts = training_curves(history)
    assert "loss" in charts["loss_chart"] and 'class="rec-series"' in charts["loss_chart"]
    assert (
        "val_ndcg@10" in charts["metric_chart"]
        and "loss" not in charts["metric_chart"].split("</title>", 1)[1]
    )
