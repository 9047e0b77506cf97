"""Every model change has its migration (django-celery-beat's test_models_match_migrations)."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_match_migrations(capsys):
    call_command("makemigrations", "--check", "--dry-run", verbosity=1)
    assert "No changes detected" in capsys.readouterr().out
