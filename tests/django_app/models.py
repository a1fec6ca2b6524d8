from __future__ import annotations

from django.db import models
from django.utils import timezone


class Person(models.Model):
    name = models.CharField(max_length=100)
    follows = models.ManyToManyField("self", symmetrical=False, related_name="followers")

    class Meta:
        app_label = "django_app"


class Post(models.Model):
    author = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="posts")
    text = models.CharField(max_length=280)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "django_app"


class Follow(models.Model):
    """One row per follow, for apps that keep their graph this way."""

    follower = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")

    class Meta:
        app_label = "django_app"
