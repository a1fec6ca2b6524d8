"""timak: bounded, mergeable timelines on Dynamo-style key-value stores."""

from __future__ import annotations

__version__ = "1.0.0.dev0"
