"""Eight threads ingesting events at once into the demo's SQLite file: run by test_sqlite_writes.py.

    SQLITE_PATH=/tmp/x.sqlite3 python -m tests.demo.sqlite_writers

Prints "stored N errors M"; a write that failed ("database is locked") is an error.
"""

from __future__ import annotations

import os
import threading

THREADS, BATCHES, PER_BATCH = 8, 25, 4


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from project.news.models import Article
    from recommender.models import Interaction, Item
    from recommender.tracking.events import EventInput, ingest

    call_command("migrate", verbosity=0)
    article = Article.objects.create(
        title="Hot story", slug="hot-story", body="b", published_at=timezone.now()
    )
    item = Item.objects.get(object_id=str(article.pk))
    errors: list[str] = []

    def writer(n: int) -> None:
        try:
            for k in range(BATCHES):
                ingest(
                    EventInput(
                        item_id=item.pk, event_type="view", visitor_id=f"v{n}", event_id=f"e{n}-{k}-{j}"
                    )
                    for j in range(PER_BATCH)
                )
        except Exception as exc:  # what the test counts
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"stored {Interaction.objects.count()} errors {len(errors)} {errors[:2]}")


if __name__ == "__main__":
    main()
