"""Packaging: the wheel carries the whole app, its metadata and license, and declares what the app imports.

The wheel is built here without build isolation (setuptools from the test venv), from a copy of only
what the build reads, so stale build/ folders of the checkout cannot hide a gap. `.ci/check-wheel`
goes further: a fresh venv and the demo site run against the installed wheel.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from project.settings import _database_from_url

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "recommender"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Imported by the app but deliberately not declared: guarded by try/except ImportError, and present
# anyway through a declared dependency.
UNDECLARED_OK = {"tqdm": "progress bars only when importable; comes with sentence-transformers"}


def _dist_name(requirement: str) -> str:
    """``"psycopg[binary]>=3.1"`` -> ``"psycopg"``, normalised as in PEP 503."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _app_files() -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for p in APP.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def _third_party_imports() -> set[str]:
    """Top-level names of the non-stdlib modules that recommender/ imports (absolute imports only)."""
    names = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("recommender", "__future__")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    pytest.importorskip("build", reason="`build` comes with requirements.txt")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(APP, src / "recommender", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = out.glob("*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_holds_every_file_of_the_app(wheel):
    """Subpackages, templates, static files and migrations, wherever the reorganisation puts them."""
    missing = sorted(_app_files() - set(wheel.namelist()))
    assert not missing, f"not in the wheel: {missing}"
    names = wheel.namelist()
    assert "recommender/static/recommender/tracker.js" in names
    assert any(n.startswith("recommender/templates/recommender/") for n in names)
    assert any(re.fullmatch(r"recommender/migrations/0001_\w+\.py", n) for n in names)


def test_wheel_metadata_and_license(wheel):
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert "Classifier: Framework :: Django :: 5.2" in text
    assert "Classifier: Programming Language :: Python :: 3.11" in text
    for label in ("Homepage", "Documentation", "Source", "Issues"):
        assert f"Project-URL: {label}, https://github.com/django-recommender/" in text
    (license_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(license_file) == (ROOT / "LICENSE").read_bytes()


def test_license_file_is_the_mit_license():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 django-recommender contributors" in text
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_package_discovery_is_a_pattern():
    """New subpackages (recommender.serving, .tracking, ...) must not need listing in pyproject."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["recommender*"]
    assert setuptools["packages"]["find"].get("namespaces", True), "folders without __init__.py too"


def test_dependencies_match_what_the_app_imports():
    project = PYPROJECT["project"]
    core = {_dist_name(r) for r in project["dependencies"]}
    extras = {_dist_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    module_to_dists = packages_distributions()
    imported = {}
    for module in _third_party_imports():
        dists = module_to_dists.get(module)
        assert dists, f"recommender/ imports {module!r}, which no installed distribution provides"
        imported[module] = {_dist_name(d) for d in dists}
    undeclared = {m: d for m, d in imported.items() if not d & (core | extras) and m not in UNDECLARED_OK}
    assert not undeclared, f"imported by recommender/ but not in pyproject dependencies: {undeclared}"
    used = set().union(*imported.values())
    unused = core - used
    assert not unused, f"pyproject dependencies that recommender/ never imports: {sorted(unused)}"


def test_database_url_goes_through_dj_database_url():
    config = _database_from_url("postgres://rec:p%40ss@db.example:6543/news?sslmode=require")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("news", "rec", "p@ss")
    assert (config["HOST"], int(config["PORT"])) == ("db.example", 6543)
    assert config["CONN_MAX_AGE"] == 60
    assert config["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "nosuch://h/db"])
def test_database_url_other_than_postgres_is_refused(url):
    with pytest.raises(ValueError, match="DATABASE_URL must be a postgres:// URL"):
        _database_from_url(url)
