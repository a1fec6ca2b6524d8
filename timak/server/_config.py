"""``ServerConfig``: everything ``timak serve`` can be told, with its limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._auth import Tokens

__all__ = ["ServerConfig"]


@dataclass(frozen=True)
class ServerConfig:
    """How one service runs.

    ``url``: the store. ``tokens``: who may read and write (none: anyone, on
    loopback only; ``timak serve`` enforces that). ``poll_interval``:
    seconds between the polls of a subscribed key. ``heartbeat``: seconds
    between SSE comments on an idle stream (keeps proxies from closing it).
    ``max_body_bytes``: the largest request body (413 beyond). ``max_page``:
    the largest ``limit`` a read may ask for. ``max_fanout_keys``: keys per
    fan-out request. ``max_subscriptions``: keys one WebSocket may watch.
    ``max_followers``: the capacity of the follow graph's timelines.
    """

    url: str
    tokens: Tokens = field(default_factory=Tokens)
    poll_interval: float = 1.0
    heartbeat: float = 15.0
    max_body_bytes: int = 1024 * 1024
    max_page: int = 1000
    max_fanout_keys: int = 10_000
    max_subscriptions: int = 1000
    max_followers: int = 10_000
