"""Headless Chromium on the seeded Wagtail demo: an editor adds a "Recommended for you" block in
Wagtail's editor and publishes; a signed-in reader sees personal recommendations in it; the admin's
recommender menu entries open Wagtail's own views, and the tuning page's live preview answers.

Screenshots land in ``test-artifacts/wagtail/`` (git-ignored, kept by CI as artifacts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from project.wagtail_news.models import HomePage
from project.wagtail_news.seeding import ADMIN_PASSWORD, ADMIN_USERNAME, READER_PASSWORD
from recommender.contrib.wagtail.wagtail_hooks import TOOLS
from recommender.models import ModelVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "wagtail"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    executable = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"no Chromium at {executable}; set PLAYWRIGHT_CHROMIUM_EXECUTABLE")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test body stay sync.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }  # model artifacts


@pytest.fixture
def seeded_site(db) -> HomePage:
    """The Wagtail demo, small: sections, article pages, readers with histories, an embedded, trained model.

    Its home page starts without blocks: the editor adds one.
    """
    out = StringIO()
    call_command("wagtail_demo_seed", articles=80, users=20, events_per_user=40, topics=4, stdout=out)
    call_command("recommender_embed", stdout=out)
    call_command("recommender_train", "--activate", "--max-minutes", "1", stdout=out)
    assert ModelVersion.objects.active() is not None, out.getvalue()
    home = HomePage.objects.get(slug="daily-demo")
    home.body = []
    home.save_revision().publish()
    return home


def tab_for(browser, live_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live_server.url)
    tab = context.new_page()
    tab.set_default_timeout(60_000)  # a shared 2-core machine can be slow
    return tab


def shoot(tab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_editor_places_a_block_and_a_reader_sees_personal_recommendations(browser, live_server, seeded_site):
    home = seeded_site
    editor = tab_for(browser, live_server)
    editor.goto("/cms/login/")
    editor.fill("#id_username", ADMIN_USERNAME)
    editor.fill("#id_password", ADMIN_PASSWORD)
    editor.click("button[type=submit]")
    editor.wait_for_url("**/cms/")
    editor.goto(f"/cms/pages/{home.pk}/edit/")
    editor.get_by_role("button", name="Insert a block").first.click()
    editor.get_by_role("option", name="Recommended for you").click()
    editor.wait_for_selector("input[name$='-value-count']")
    editor.fill("input[name$='-value-count']", "4")
    shoot(editor, "1-editor-adds-block")
    editor.locator("footer .w-dropdown__toggle").first.click()
    editor.click("button[name=action-publish]")
    editor.wait_for_url("**/cms/pages/**")
    shoot(editor, "2-published")
    home.refresh_from_db()
    assert home.live and [block.block_type for block in home.body] == ["recommended_for_you"]

    for n, (label, url_name, _, _) in enumerate(TOOLS):  # every entry of the menu opens a Wagtail view
        editor.goto("/cms/")
        editor.get_by_role("button", name="Recommender").click()
        editor.locator(f'a.sidebar-menu-item__link[href="{reverse(url_name)}"]', has_text=label).click()
        editor.wait_for_url(f"**{reverse(url_name)}")
        assert editor.locator("main#main h1").is_visible(), label
        shoot(editor, f"3-{n + 1}-{label.lower().replace(' ', '-')}")
    editor.goto(reverse("recommender_wagtail:tuning"))  # the live preview answers in Wagtail's admin too
    editor.fill("#id_user", "user001")
    editor.click("#rec-preview-run")
    editor.locator("#rec-preview-edited tbody tr[data-item-id]").first.wait_for()
    shoot(editor, "4-tuning-live-preview")
    editor.goto(reverse("recommender_rules:add"))
    shoot(editor, "5-add-editorial-rule")

    visitor = tab_for(browser, live_server)
    visitor.goto("/login/")
    visitor.fill("#id_username", "user001")
    visitor.fill("#id_password", READER_PASSWORD)
    visitor.click("button[type=submit]")
    visitor.wait_for_url(live_server.url + "/")
    block = visitor.locator('section[data-recommender-block="recommended_for_you"]')
    block.wait_for()
    reasons = block.locator("[data-recommender-reason]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.recommenderReason)"
    )
    shoot(visitor, "6-reader-sees-recommendations")
    assert len(reasons) == 4
    assert "personalized" in reasons  # from the trained model and the reader's history
