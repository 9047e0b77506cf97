"""The recommender's tools (dashboard, tuning, model registry...) on the admin index, not only the app's.

Django's index lists models, and the dashboard is not one. ``admin.site`` gets an
index template that extends the usual ``admin/index.html`` (so a host's override of
it still applies) and puts the tools above the app list, unless the host chose an
index template of its own; such a host can include ``admin/recommender/tools.html``.
"""

from __future__ import annotations

from django.contrib import admin

INDEX_TEMPLATE = "admin/recommender/index.html"

if admin.site.index_template is None:
    admin.site.index_template = INDEX_TEMPLATE
