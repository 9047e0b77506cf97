"""recommender.ml must stay pure PyTorch: importing all of it pulls in no Django, DRF or Celery."""

import json
import subprocess
import sys
import textwrap

FORBIDDEN = ("django", "rest_framework", "celery")


def test_ml_package_imports_no_web_or_queue_framework():
    # A fresh interpreter, so nothing imported by pytest-django or other tests can hide a leak.
    script = textwrap.dedent(
        """
        import importlib, json, pkgutil, sys
        import recommender.ml as ml
        names = [m.name for m in pkgutil.walk_packages(ml.__path__, prefix="recommender.ml.")]
        names = [n for n in names if not n.endswith(".__main__")]  # runs the CLI; it only calls cli.py
        for name in names:
            importlib.import_module(name)
        loaded = sorted({m.split(".")[0] for m in sys.modules})
        print(json.dumps({"modules": names, "top_level": loaded}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"recommender.ml.embedder", "recommender.ml.trainer", "recommender.ml.inference"} <= set(
        result["modules"]
    )
    leaked = [name for name in FORBIDDEN if name in result["top_level"]]
    assert leaked == [], f"recommender.ml imported {leaked}"
