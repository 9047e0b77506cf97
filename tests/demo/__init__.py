"""Tests of the demo host site: the seed command and the news pages."""
