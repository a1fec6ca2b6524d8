"""One post model per side of ``benchmarks/django_feed.py``, the same fields
each: ``TimakPost`` (timak's activity feeds through ``register_activities``),
``ActPost`` (django-activity-stream's ``action.send`` in ``post_save``) and
``PlainPost`` (no receivers: the INSERT alone, the floor)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class _Post(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="+")
    text = models.CharField(max_length=280)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        app_label = "djfeed"


class TimakPost(_Post):
    class Meta(_Post.Meta):
        abstract = False


class ActPost(_Post):
    class Meta(_Post.Meta):
        abstract = False


class PlainPost(_Post):
    class Meta(_Post.Meta):
        abstract = False
