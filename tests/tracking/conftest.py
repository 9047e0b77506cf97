"""Tracking tests check their effect on served lists, so they share the serving fixtures."""

from tests.serving.conftest import serving_settings, session, trained_models

__all__ = ["serving_settings", "session", "trained_models"]
