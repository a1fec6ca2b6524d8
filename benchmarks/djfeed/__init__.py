"""The app of ``benchmarks/django_feed.py``: three post models, one per side."""
