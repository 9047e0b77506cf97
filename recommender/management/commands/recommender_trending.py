"""``manage.py recommender_trending``: recompute ``Item.trending_score`` now (the ``compute_trending`` task).

Beat runs the task every few minutes (``SCHEDULE["trending"]``). A site without beat, such
as the demo right after seeding, runs this instead: until scores are stored, the Trending
block counts recent events on its own while the admin shows every item at 0.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from recommender.conf import recommender_settings
from recommender.models import Item
from recommender.training import maintenance
from recommender.tuning import get_tuning

SHOWN = 3  # top items named in the summary


class Command(BaseCommand):
    help = "Recompute the stored trending scores from the engagement of the last TRENDING_WINDOW_HOURS."

    def handle(self, *args: Any, **options: Any) -> None:
        scored = maintenance.compute_trending()
        window = (
            f"the last {get_tuning().trending_window_hours:g} h, "
            f"half-life {recommender_settings.TRENDING_HALF_LIFE_HOURS:g} h"
        )
        if not scored:
            self.stdout.write(self.style.WARNING(f"No item has a trending score: no engagement in {window}."))
            return
        top = Item.objects.filter(trending_score__gt=0).order_by("-trending_score", "-pk")[:SHOWN]
        named = "; ".join(f'{item.trending_score:.3f} "{item}"' for item in top)
        self.stdout.write(f"{scored} item(s) have a trending score ({window}). Highest: {named}")
