"""The admin driven by headless Chromium as a staff member: preview, review, train, dashboard.

Screenshots of every page land in ``test-artifacts/admin/`` (git-ignored).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from recommender.identity import Identity
from recommender.models import (
    EditorialRule,
    Feedback,
    Interaction,
    ItemTag,
    ModelVersion,
    RecommendationLog,
    TuningSettings,
)
from recommender.serving.recommend import recommend
from tests.admin import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"
TINY_TRAINING = {
    "epochs": 2,
    "d_model": 16,
    "n_heads": 1,
    "n_layers": 1,
    "max_len": 20,
    "batch_size": 16,
    "warmup": 1,
    "threads": 1,
    "bf16": False,
    "patience": 2,
}


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RECOMMENDER = {
        **settings.RECOMMENDER,
        "MIN_INTERACTIONS_TO_TRAIN": 10,
        "TRAIN_CONFIG": TINY_TRAINING,
    }


@pytest.fixture
def page(browser, live_server):
    factories.user("staff", superuser=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live_server.url)
    tab = context.new_page()
    tab.set_default_timeout(60_000)  # a shared 2-core machine can be slow
    tab.goto("/admin/login/")
    tab.fill("#id_username", "staff")
    tab.fill("#id_password", factories.PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_url("**/admin/")
    yield tab
    context.close()


def shoot(tab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def first_ids(tab, table: str) -> list[str]:
    return tab.eval_on_selector_all(
        f"#{table} tbody tr[data-item-id]", "rows => rows.map(r => r.dataset.itemId)"
    )


def test_tuning_preview_changes_before_saving(page) -> None:
    old = factories.article_item("Old hit", topics=("Football",), hours_ago=240, trending=10.0)
    fresh = factories.article_item("Fresh story", topics=("Climate",), hours_ago=1, trending=2.0)
    seen = factories.article_item("Middle piece", topics=("Space",), hours_ago=48, trending=5.0)
    page.goto("/admin/recommender/tuningsettings/")
    page.fill("#id_items", str(seen.pk))
    page.click("#rec-preview-run")
    page.wait_for_selector("#rec-preview-edited tbody tr[data-item-id]")
    assert first_ids(page, "rec-preview-current")[0] == str(old.pk)
    assert first_ids(page, "rec-preview-edited")[0] == str(old.pk)

    page.fill("#id_MODEL_WEIGHT", "0")
    page.fill("#id_POPULARITY_WEIGHT", "0")
    page.fill("#id_FRESHNESS_WEIGHT", "5")
    page.wait_for_function(
        "id => document.querySelector('#rec-preview-edited tbody tr[data-item-id]').dataset.itemId === id",
        arg=str(fresh.pk),
    )
    assert first_ids(page, "rec-preview-current")[0] == str(old.pk)  # the saved tuning still serves the hit
    assert page.locator("#rec-preview-edited tr.rec-changed").count() >= 1
    assert not TuningSettings.objects.exclude(values={}).exists()  # nothing saved yet
    assert not RecommendationLog.objects.exists()  # previews leave no log
    shoot(page, "tuning-preview")

    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert TuningSettings.objects.get().values["FRESHNESS_WEIGHT"] == 5.0
    assert "FRESHNESS_WEIGHT" in page.inner_text("#tuning-history")
    shoot(page, "tuning-saved")


def test_review_feedback_and_block_the_item(page) -> None:
    spam = factories.article_item("Spammy listicle", topics=("Football",), trending=9.0)
    factories.article_item("Good analysis", topics=("Climate",), trending=5.0)
    visitor = Identity(user_id=None, visitor_id="before-block")
    assert spam.pk in [r.item.pk for r in recommend(visitor, limit=2)]
    report = factories.feedback(spam, reason="clickbait and ads")
    page.goto("/admin/recommender/feedback/?status__exact=new")
    shoot(page, "feedback-queue")
    page.check(f"input[name=_selected_action][value='{report.pk}']")
    page.select_option("select[name=action]", "block_item")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert EditorialRule.objects.filter(item=spam, action="block").exists()
    report.refresh_from_db()
    assert report.status == Feedback.Status.ACTIONED
    served = [r.item.pk for r in recommend(Identity(user_id=None, visitor_id="after-block"), limit=2)]
    assert served and spam.pk not in served
    page.goto("/admin/recommender/editorialrule/")
    assert "Spammy listicle" in page.inner_text("#result_list")
    shoot(page, "editorial-rules")


def test_train_now_shows_the_new_version(page) -> None:
    items = [factories.article_item(f"Story {n}", topics=(("Football", "Climate")[n % 2],)) for n in range(8)]
    readers = [factories.user(f"reader{n}", staff=False) for n in range(6)]
    start = timezone.now() - timedelta(days=1)
    for r, reader in enumerate(readers):
        for step in range(6):
            Interaction.objects.create(
                event_id=f"r{r}s{step}",
                user=reader,
                item=items[(r + step * 2) % len(items)],
                event_type="view",
                timestamp=start + timedelta(minutes=10 * step + r),
            )
    page.goto("/admin/recommender/modelversion/")
    page.wait_for_selector("#rec-progress")
    page.click("#rec-train-now")
    page.wait_for_selector(".messagelist li", timeout=120_000)
    message = page.inner_text(".messagelist")
    version = ModelVersion.objects.order_by("-created_at").first()
    assert version is not None and version.status == ModelVersion.Status.SUCCEEDED, message
    assert version.name in message and version.is_active
    assert version.name in page.inner_text("#result_list")
    shoot(page, "model-registry")
    page.click(f"#result_list a:text('{version.name}')")
    page.wait_for_selector("svg.rec-chart")
    assert page.locator("polyline.rec-series").count() >= 1  # the training curve
    shoot(page, "model-version")


def test_dashboard_renders_charts(page) -> None:
    items = [factories.article_item(f"Piece {n}", topics=(("Football", "Space")[n % 2],)) for n in range(4)]
    now = timezone.now()
    for day in range(3):
        for n, item in enumerate(items):
            when = now - timedelta(days=day, minutes=n)
            Interaction.objects.create(
                event_id=f"i{day}{n}",
                visitor_id="v",
                item=item,
                event_type="impression",
                placement="home",
                timestamp=when,
            )
            if n % 2:
                Interaction.objects.create(
                    event_id=f"c{day}{n}",
                    visitor_id="v",
                    item=item,
                    event_type="click",
                    placement="home",
                    timestamp=when,
                )
        RecommendationLog.objects.create(
            recomm_id=f"log{day}",
            visitor_id="v",
            placement="home",
            created_at=now - timedelta(days=day),
            items=[
                {"item": i.pk, "position": p, "reason": "trending", "score": 1.0} for p, i in enumerate(items)
            ],
        )
    page.goto("/admin/recommender/")
    page.click("#recommender-tools a:text('Dashboard')")
    page.wait_for_selector("svg.rec-chart")
    assert page.locator("svg.rec-chart").count() == 7
    assert page.locator("svg.rec-chart polyline.rec-series").count() >= 4
    assert page.locator("svg.rec-chart rect.rec-bar").count() == 2
    shoot(page, "dashboard")


def test_every_other_page_opens(page) -> None:
    item = factories.article_item("Catalogue entry", topics=("Space",))
    ItemTag.objects.create(
        item=item, tag=factories.tag("Astronomy"), source="automatic", status="pending", weight=0.6
    )
    for name, path in [
        ("index", "/admin/"),
        ("app-index", "/admin/recommender/"),
        ("items", "/admin/recommender/item/"),
        ("item", f"/admin/recommender/item/{item.pk}/change/"),
        ("tags", "/admin/recommender/tag/"),
        ("tag-suggestions", "/admin/recommender/itemtag/?source__exact=automatic&status__exact=pending"),
        ("tuning-changes", "/admin/recommender/tuningchange/"),
        ("served-lists", "/admin/recommender/recommendationlog/"),
    ]:
        response = page.goto(path)
        assert response.status == 200, path
        shoot(page, name)
        if name == "tag-suggestions":
            assert "Astronomy" in page.inner_text("#result_list")


def test_running_job_progress_updates_live(page) -> None:
    job = ModelVersion.objects.create(
        name="train-live",
        status="running",
        started_at=timezone.now(),
        progress={"epoch": 2, "epochs": 5, "loss": 3.1},
    )
    page.goto("/admin/recommender/modelversion/")
    page.wait_for_function("document.getElementById('rec-progress').textContent.includes('epoch 2/5')")
    ModelVersion.objects.filter(pk=job.pk).update(progress={"epoch": 4, "epochs": 5, "loss": 2.5})
    page.wait_for_function("document.getElementById('rec-progress').textContent.includes('epoch 4/5')")
    shoot(page, "model-progress")
    ModelVersion.objects.filter(pk=job.pk).update(status="succeeded")
    page.wait_for_function("document.getElementById('rec-progress').textContent.includes('No job running')")
