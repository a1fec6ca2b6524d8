"""``manage.py timak_backfill app_label.Model``: put existing rows on their timelines.

Every registration of the model (``timak.contrib.django.register`` and
``timak.contrib.django.activity.register_activities``) writes every row,
in primary-key order, read ``--batch`` rows at a time with
``QuerySet.iterator(chunk_size=...)``, so memory stays flat however many
rows there are. Writes are idempotent: running it twice, or while the app also
writes, is safe.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.apps import apps  # type: ignore[import-untyped]
from django.core.management.base import (  # type: ignore[import-untyped]
    BaseCommand,
    CommandError,
)

from timak.cli._progress import Progress
from timak.contrib.django import registrations
from timak.contrib.django.activity import activity_registrations
from timak.errors import TimakError


class _Raw:
    """A command's output wrapper, minus the newline it adds to every write,
    so the progress line can redraw itself on a terminal."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return bool(self._wrapper.isatty())


def _model(label: str) -> Any:
    """The model ``app_label.ModelName`` names, or a ``CommandError`` saying
    what to write instead (a bare ``Post`` lists the apps that have one)."""
    if label.count(".") != 1 or not all(label.split(".")):
        matches = sorted(
            m._meta.label for m in apps.get_models() if m.__name__.lower() == label.lower()
        )
        hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
        raise CommandError(f"name the model as app_label.ModelName, e.g. social.Post, "
                           f"got {label!r}{hint}")
    try:
        return apps.get_model(label)
    except LookupError as exc:
        raise CommandError(f"no model {label!r}: {exc}") from None


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type hints
    help = "Write existing rows of a registered model onto their timak timelines."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("model", help="app_label.ModelName")
        parser.add_argument(
            "--batch", type=int, default=1000, help="rows read per query (default: 1000)"
        )
        parser.add_argument(
            "--blind", action="store_true",
            help="write every key blind (fanout), even for registrations that read first",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        label: str = options["model"]
        batch: int = options["batch"]
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        model = _model(label)
        found = registrations(model)
        activities = activity_registrations(model)
        if not found and not activities:
            raise CommandError(
                f"{label} is not registered with timak.contrib.django.register() or "
                "timak.contrib.django.activity.register_activities(); register it in "
                "an AppConfig.ready()"
            )
        rows = model._default_manager.order_by("pk")
        progress = Progress(label, rows.count(), stream=cast(TextIO, _Raw(self.stdout)))
        done = writes = 0
        try:
            for row in rows.iterator(chunk_size=batch):
                for registration in found:
                    blind = True if options["blind"] else None
                    writes += registration.write(registration.item(row), blind=blind)
                for declared in activities:
                    writes += declared.write(row)  # Feeds.add_activity: blind already
                done += 1
                progress.update(done)
        except TimakError as exc:
            raise CommandError(f"stopped after {done} rows: {type(exc).__name__}: {exc}") from exc
        finally:
            progress.finish()
        self.stdout.write(
            f"backfilled {done} {label} rows: {writes} timeline writes "
            f"for {len(found) + len(activities)} registration(s)"
        )
