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
from recommender.schedule import install_periodic_tasks
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
    tab.failed = []  # URLs answered 4xx/5xx (a missing favicon shows up here)
    tab.on("response", lambda response: response.status >= 400 and tab.failed.append(response.url))
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


# Every text of every chart inside its viewBox (getBBox: the browser's own font metrics), x labels
# apart from each other, and each chart inside its box on the page.
CHART_PROBLEMS = """() => {
  const problems = [];
  for (const svg of document.querySelectorAll("svg.rec-chart")) {
    const name = svg.getAttribute("aria-label"), vb = svg.viewBox.baseVal;
    for (const text of svg.querySelectorAll("text")) {
      const b = text.getBBox(), label = text.firstChild.textContent;
      if (b.x < vb.x || b.y < vb.y || b.x + b.width > vb.x + vb.width || b.y + b.height > vb.y + vb.height) {
        problems.push(`${name}: "${label}" leaves the chart`);
      }
    }
    const xs = [...svg.querySelectorAll("text.rec-x-label")].map(t => t.getBBox()).sort((a, b) => a.x - b.x);
    for (let i = 1; i < xs.length; i++) {
      if (xs[i].x < xs[i - 1].x + xs[i - 1].width) { problems.push(`${name}: x labels ${i} overlap`); }
    }
    const box = svg.parentElement.getBoundingClientRect(), own = svg.getBoundingClientRect();
    if (own.right > box.right + 1) { problems.push(`${name}: wider than its box`); }
  }
  return problems;
}"""


def y_ticks(tab, title: str) -> list[str]:
    return tab.eval_on_selector_all(
        f'svg.rec-chart[aria-label="{title}"] text.rec-y-tick', "ticks => ticks.map(t => t.textContent)"
    )


def fits(tab, selector: str) -> bool:
    """Whether the element ends inside the window and scrolls nothing sideways."""
    return tab.eval_on_selector(
        selector,
        """el => el.getBoundingClientRect().right <= window.innerWidth
                && (!el.parentElement.classList.contains("results")
                    || el.parentElement.scrollWidth <= el.parentElement.clientWidth)
                && document.documentElement.scrollWidth <= window.innerWidth""",
    )


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


def test_tuning_preview_is_readable_at_1280_and_clears_on_errors(page) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    items = [
        factories.article_item(
            f"A headline of ordinary length, number {n}", hours_ago=n + 1, trending=20.0 - n
        )
        for n in range(14)
    ]
    factories.user("reader", staff=False)
    page.goto("/admin/recommender/tuningsettings/")
    page.fill("#id_items", str(items[-1].pk))
    page.click("#rec-preview-run")
    page.wait_for_selector("#rec-preview-edited tbody tr[data-item-id]")
    assert len(first_ids(page, "rec-preview-current")) == len(first_ids(page, "rec-preview-edited")) == 10
    for table in ("rec-preview-current", "rec-preview-edited"):
        width = page.eval_on_selector(
            f"#{table} tbody td:nth-child(2)", "td => td.getBoundingClientRect().width"
        )
        height = page.eval_on_selector(f"#{table}", "t => t.getBoundingClientRect().height")
        assert width >= 200, (table, width)  # was ~70 px
        assert height <= 900, (table, height)  # ten rows were ~2,300 px
    assert fits(page, "#rec-preview")
    cut = page.eval_on_selector_all(
        "#tuning-form fieldset input",
        """ins => ins.filter(i => i.getBoundingClientRect().right
                                 > i.closest("fieldset").getBoundingClientRect().right).map(i => i.name)""",
    )
    assert cut == []  # the form beside the preview still shows its inputs whole
    shoot(page, "tuning-preview-1280")

    page.fill("#id_items", "")
    page.fill("#id_user", "nobody")
    page.click("#rec-preview-run")
    page.wait_for_selector("#rec-preview-status.rec-preview-error")
    assert page.inner_text("#rec-preview-status") == "User (id or username): No such user."
    assert first_ids(page, "rec-preview-current") == first_ids(page, "rec-preview-edited") == []
    assert page.inner_text("#rec-preview-history") == ""
    assert page.get_attribute("#id_user", "aria-invalid") == "true"

    page.fill("#id_user", "reader")
    page.fill("#id_FRESHNESS_WEIGHT", "-1")
    page.wait_for_function(
        "!document.getElementById('rec-preview-status').textContent.includes('No such user')"
    )
    page.wait_for_selector("#rec-preview-status.rec-preview-error")
    status = page.inner_text("#rec-preview-status")
    assert status.startswith("Freshness weight: ") and "FRESHNESS_WEIGHT" not in status
    assert page.get_attribute("#id_FRESHNESS_WEIGHT", "aria-invalid") == "true"
    assert page.get_attribute("#id_user", "aria-invalid") is None
    shoot(page, "tuning-preview-error")


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
    assert page.evaluate(CHART_PROBLEMS) == []
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
    for n, ndcg in enumerate((0.0512345, 0.0623456, 0.0634567)):
        ModelVersion.objects.create(
            name=f"train-20241201-14050{n}-abc12{n}",
            status="succeeded",
            metrics={"val_ndcg@10": ndcg, "val_hr@10": 2 * ndcg},
        )
    page.goto("/admin/")  # the main index, not only the app's page, leads to the dashboard
    page.click("#recommender-tools a:text('Dashboard')")
    page.wait_for_selector("svg.rec-chart")
    assert page.locator("svg.rec-chart").count() == 7
    assert page.locator("svg.rec-chart polyline.rec-series").count() >= 6
    assert page.locator("svg.rec-chart rect.rec-bar").count() == 2
    # Two clicks a day: the old axis read 0, 0.5, 1, 1.5, 2.
    assert y_ticks(page, "Clicks per placement") == ["0", "1", "2"]
    assert all(t.isdigit() for t in y_ticks(page, "Impressions per placement"))
    tooltips = page.eval_on_selector_all("svg.rec-chart circle title", "ts => ts.map(t => t.textContent)")
    assert any(t.startswith("home · ") for t in tooltips)
    assert any(t.startswith("val_ndcg@10 · train-20241201-140502-abc122: 0.06346") for t in tooltips)
    assert page.evaluate(CHART_PROBLEMS) == []
    shoot(page, "dashboard")

    page.click(".rec-windows a:text('90 days')")
    page.wait_for_url("**/dashboard/?days=90")
    shown = page.eval_on_selector_all(
        'svg.rec-chart[aria-label="Impressions per placement"] text.rec-x-label',
        "ls => ls.map(l => l.textContent)",
    )
    today = timezone.localdate()
    assert 5 <= len(shown) <= 15 and shown[-1] == f"{today:%b} {today.day}"  # the newest day, in full
    assert page.evaluate(CHART_PROBLEMS) == []
    shoot(page, "dashboard-90-days")


def test_the_admin_index_leads_to_every_tool(page) -> None:
    for link, path in [
        ("Dashboard", "/admin/recommender/recommendationlog/dashboard/"),
        ("Tuning and live preview", "/admin/recommender/tuningsettings/"),
        ("Model registry", "/admin/recommender/modelversion/"),
    ]:
        page.goto("/admin/")
        page.click(f"#recommender-tools a:text('{link}')")
        page.wait_for_url(f"**{path}")
    page.goto("/admin/")
    shoot(page, "index")


def test_lists_fit_1400_pixels_and_name_people(page) -> None:
    reader = factories.user("ada_reader", staff=False)
    item = factories.article_item("A story with a title of a common length for a news site")
    versions = [
        ModelVersion.objects.create(
            name=f"{kind}-20241201-14050{n}-abc12{n}",
            kind=kind,
            status="succeeded",
            device="cuda:0",
            metrics={"val_ndcg@10": 0.0823456789},
            gate_comparison={"candidate": {"ndcg@10": 0.081234}, "active": {"ndcg@10": 0.079876}},
            progress={"epoch": 12, "epochs": 40},
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        for n, kind in enumerate(("train", "refresh"))
    ]
    for n, version in enumerate(versions):
        RecommendationLog.objects.create(
            recomm_id=f"{n}" * 32,
            user=reader if n == 0 else None,
            visitor_id="" if n == 0 else "f" * 32,
            placement="article-sidebar",
            model_version=version,
            items=[{"item": item.pk, "position": 0, "reason": "personalized", "score": 1.0}] * 10,
        )
    Feedback.objects.create(item=item, kind="report", reason="clickbait", user=reader)
    for name, path, column in [
        ("model-registry-list", "/admin/recommender/modelversion/", "finished"),
        ("served-lists", "/admin/recommender/recommendationlog/", "version"),
        ("feedback-list", "/admin/recommender/feedback/", "who"),
    ]:
        page.goto(path)
        assert fits(page, "#result_list"), name
        assert fits(page, f"#result_list th.column-{column}"), name
        shoot(page, name)
        if name != "model-registry-list":
            assert (
                "ada_reader" in page.inner_text("#result_list") and f"user {reader.pk}" not in page.content()
            )

    page.goto("/admin/recommender/item/")
    choices = page.eval_on_selector_all(
        "#changelist-filter details:has(summary:text('By content type')) li a",
        "as => as.map(a => a.textContent)",
    )
    assert choices == ["All", "Articles"]


def test_every_other_page_opens(page) -> None:
    item = factories.article_item("Catalogue entry", topics=("Space",))
    ItemTag.objects.create(
        item=item, tag=factories.tag("Astronomy"), source="automatic", status="pending", weight=0.6
    )
    install_periodic_tasks()
    version = ModelVersion.objects.create(
        name="train-detail",
        status="succeeded",
        metrics={"val_ndcg@10": 0.0823456789},
        data_summary={"users": 3333, "items": 812, "events": 17107, "epochs_run": 12, "seconds": 61.25},
    )
    for name, path in [
        ("site-home", "/"),
        ("app-index", "/admin/recommender/"),
        ("items", "/admin/recommender/item/"),
        ("item", f"/admin/recommender/item/{item.pk}/change/"),
        ("tags", "/admin/recommender/tag/"),
        ("tag-suggestions", "/admin/recommender/itemtag/?source__exact=automatic&status__exact=pending"),
        ("tuning-changes", "/admin/recommender/tuningchange/"),
        ("model-detail", f"/admin/recommender/modelversion/{version.pk}/change/"),
        ("periodic-tasks", "/admin/django_celery_beat/periodictask/"),
        ("intervals", "/admin/django_celery_beat/intervalschedule/"),
    ]:
        response = page.goto(path)
        assert response.status == 200, path
        icon = page.get_attribute("link[rel=icon]", "href")
        assert icon and page.request.get(icon).status == 200, path
        shoot(page, name)
        if name == "tag-suggestions":
            assert "Astronomy" in page.inner_text("#result_list")
        if name == "model-detail":
            assert "3,333 training sequences from 17,107 events" in page.inner_text(".rec-data-sentence")
            assert "0.08235" in page.content() and "0.0823456789" not in page.content()
        if name == "intervals":
            assert "recommender-train" in page.inner_text("#result_list")
    assert page.failed == []  # no 404, the favicon included


def test_running_job_progress_updates_live(page) -> None:
    job = ModelVersion.objects.create(
        name="train-live",
        status="running",
        started_at=timezone.now(),
        progress={"epoch": 2, "epochs": 5, "loss": 3.1},
    )
    page.goto("/admin/recommender/modelversion/")
    page.wait_for_function("document.getElementById('rec-progress')?.textContent.includes('epoch 2/5')")
    ModelVersion.objects.filter(pk=job.pk).update(progress={"epoch": 4, "epochs": 5, "loss": 2.5})
    page.wait_for_function("document.getElementById('rec-progress')?.textContent.includes('epoch 4/5')")
    shoot(page, "model-progress")
    ModelVersion.objects.filter(pk=job.pk).update(status="succeeded")
    # The page reloads itself when the job ends: the box is missing for a moment.
    page.wait_for_function("document.getElementById('rec-progress')?.textContent.includes('No job running')")
