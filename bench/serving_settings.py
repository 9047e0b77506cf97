"""Settings of bench.serving, in-process and in its gunicorn: the demo's, measured without limits.

A module rather than override_settings, so the gunicorn workers of ``--http`` run
with exactly what the in-process rows ran with.
"""

from bench.serving import EMBEDDER_NAME, RATE
from project.settings import *  # noqa: F403
from project.settings import RECOMMENDER, REST_FRAMEWORK

ROOT_URLCONF = "bench.serving"  # the bare endpoint beside the whole demo site
# TRAIN_CONFIG: the trainer's defaults and --threads, not the demo's one-thread config.
RECOMMENDER = {**RECOMMENDER, "EMBEDDER": EMBEDDER_NAME, "TRAIN_CONFIG": {}}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "recommender_anon": RATE,
        "recommender_visitor": RATE,
        "recommender_user": RATE,
    },
}
# The demo's locmem cache keeps 300 entries; 200 readers' lists, generations and throttle
# histories need more, or "cached" requests would be misses.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "bench-serving",
        "OPTIONS": {"MAX_ENTRIES": 1_000_000},
    }
}
