"""The recommender's Django admin: importing this package registers every page with ``admin.site``.

- items: items (embedding status, re-embed), tags, automatic tag suggestions
- feedback: the review queue and its block/bury actions
- rules: editorial pin/boost/bury/block rules
- models_registry: versions, curves, train/refresh/activate/roll back, live progress
- tuning: run-time tuning with history and a live side-by-side preview
- dashboard: served lists and the SVG dashboard
- schedules: django-celery-beat's schedule pages, labelled with what each schedule runs
- site: the recommender's tools on the admin index

Helpers the pages call, kept out of the admin classes so they can be scripted and
tested without a request: actions (what the editors' buttons do), stats (the
dashboard's queries), tuning_forms (the generated tuning form, saving, previews),
charts (the SVG renderer), display (how people, numbers and times are written).
"""

from recommender.admin import dashboard, feedback, items, models_registry, rules, schedules, site, tuning

__all__ = ["dashboard", "feedback", "items", "models_registry", "rules", "schedules", "site", "tuning"]
