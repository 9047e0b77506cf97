"""A web process that renders pages and answers the API without a model loaded does not import torch.

The app defers its torch imports (training, artifacts, model loading) for this; a
top-level import anywhere on the request path would cost every process about a
second and ~180 MB at start-up.
"""

import subprocess
import sys
import textwrap


def test_setting_up_django_and_importing_the_front_ends_loads_no_torch():
    script = textwrap.dedent(
        """
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django
        django.setup()
        import recommender.admin, recommender.api.views, recommender.tasks
        import recommender.templatetags.recommender
        from django.urls import reverse
        reverse("admin:index")  # loads every URLconf, the API's included
        print(sorted(name for name in ("torch", "sentence_transformers") if name in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
