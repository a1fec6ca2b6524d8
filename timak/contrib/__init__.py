"""Adapters that connect timak to frameworks. Each lives in its own package
and imports its framework only when imported itself: ``timak.contrib.django``."""
