"""The Django app config: add ``"timak.contrib.django"`` to ``INSTALLED_APPS``
for the ``timak_backfill`` management command. Registering models needs no app."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class TimakConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "timak.contrib.django"
    label = "timak"
    verbose_name = "timak timelines"
