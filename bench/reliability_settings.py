"""Settings of bench.reliability's gunicorn: the demo's, without DEBUG and with throttles out of the way.

The load is 16 clients from one address posting as fast as they can; the bench measures
whether writes are lost or fail, not the throttle (tests cover that).
"""

from project.settings import *  # noqa: F403
from project.settings import REST_FRAMEWORK

DEBUG = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "recommender_user": "1000000/min",
        "recommender_visitor": "1000000/min",
        "recommender_anon": "1000000/min",
    },
}
