"""The Wagtail demo site's page models: a home page, topic sections and articles."""
