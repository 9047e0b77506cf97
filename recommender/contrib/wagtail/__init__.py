"""Wagtail pages as recommendable items, with page privacy, StreamField blocks and the recommender's tools
(dashboard, tuning, feedback, rules, models) in Wagtail's admin.

Add ``"recommender.contrib.wagtail"`` to ``INSTALLED_APPS`` after ``"recommender"`` and set
``RECOMMENDER = {"ADAPTER": "recommender.contrib.wagtail.adapter.WagtailRecommenderAdapter"}``;
``RECOMMENDER_WAGTAIL = {"PAGE_TYPES": [...]}`` narrows which page types become items.
"""
