"""``/metrics`` in the Prometheus text format (``prometheus-client``).

Each app has its own registry, so two apps in one process (tests) do not
share counters. What is measured:

* ``timak_http_request_duration_seconds{method,route,status}``: a latency
  histogram per route template (``/timeline/page/{key}``, never the key);
* ``timak_subscriptions{kind}``: open SSE streams and WebSocket
  subscriptions; ``timak_subscribed_keys``: keys with a poller;
* ``timak_subscription_polls_total``: polls of the store (one per subscribed
  key per interval, however many clients watch it);
* ``timak_errors_total{error}``: timak exceptions answered, by class
  (``CorruptValueError`` counts corrupt siblings met; ``UnavailableError``
  and ``BackendTimeoutError`` count store errors);
* ``timak_timeline_*_total``: the counters of the service's ``Timeline``
  objects (``TimelineStats``: reads, writes, siblings merged, repairs, folds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from ..timelines import Timeline, TimelineStats

__all__ = ["Metrics"]

_STAT_NAMES = [f.name for f in fields(TimelineStats) if not f.name.startswith("_")]


class _TimelineCollector(Collector):
    """Sums the stats of every Timeline the service made, at scrape time."""

    def __init__(self, timelines: Callable[[], Iterable[Timeline]]) -> None:
        self._timelines = timelines

    def collect(self) -> Iterator[CounterMetricFamily]:
        totals = dict.fromkeys(_STAT_NAMES, 0)
        for tl in self._timelines():
            for name in _STAT_NAMES:
                totals[name] += getattr(tl.stats, name)
        for name, value in totals.items():
            yield CounterMetricFamily(
                f"timak_timeline_{name}", f"TimelineStats.{name} summed over the service",
                value=value,
            )


class Metrics:
    """The service's instruments, on a registry of its own."""

    def __init__(self, timelines: Callable[[], Iterable[Timeline]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "timak_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route", "status"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.subscriptions = Gauge(
            "timak_subscriptions", "open subscriptions", ["kind"], registry=self.registry
        )
        self.subscribed_keys = Gauge(
            "timak_subscribed_keys", "keys with a poller", registry=self.registry
        )
        self.polls = Counter(
            "timak_subscription_polls", "change polls of the store for subscriptions",
            registry=self.registry,
        )
        self.errors = Counter(
            "timak_errors", "timak exceptions answered, by class", ["error"],
            registry=self.registry,
        )
        self.registry.register(_TimelineCollector(timelines))

    def render(self) -> bytes:
        """The text exposition of every metric."""
        data: bytes = generate_latest(self.registry)
        return data
