"""Wagtail pages as recommendable items, with page privacy, StreamField blocks and admin menu entries.

Add ``"recommender.contrib.wagtail"`` to ``INSTALLED_APPS`` after ``"recommender"`` and set
``RECOMMENDER = {"ADAPTER": "recommender.contrib.wagtail.adapter.WagtailRecommenderAdapter"}``;
``RECOMMENDER_WAGTAIL = {"PAGE_TYPES": [...]}`` narrows which page types become items.
"""
