"""Prometheus metrics, one registry per platform (so tests can run several platforms in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _CallbackCollector(Collector):
    """Gauges read at scrape time (queue depths and the like)."""

    def __init__(self) -> None:
        self.gauges: dict[str, tuple[str, Callable[[], dict[str, float]]]] = {}

    def collect(self):  # type: ignore[no-untyped-def]
        for name, (doc, fn) in self.gauges.items():
            family = GaugeMetricFamily(name, doc, labels=["name"])
            for label, value in fn().items():
                family.add_metric([label], value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ingested = Counter("citydata_ingested_total", "Records accepted and stored, by kind and channel",
                                ["kind", "channel"], registry=r)
        self.rejected = Counter("citydata_rejected_total", "Records refused with a reason, by kind and code",
                                ["kind", "code"], registry=r)
        self.dead_letters = Counter("citydata_dead_letters_total", "Inputs dead-lettered, by source",
                                    ["source"], registry=r)
        self.http_requests = Counter("citydata_http_requests_total", "HTTP requests by route and status",
                                     ["method", "route", "status"], registry=r)
        self.http_latency = Histogram("citydata_http_request_seconds", "HTTP request latency by route",
                                      ["route"], registry=r,
                                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
        self.auth_failures = Counter("citydata_auth_failures_total", "Authentication failures by code",
                                     ["code"], registry=r)
        self.mqtt_messages = Counter("citydata_mqtt_messages_total", "MQTT messages received by topic family",
                                     ["family"], registry=r)
        self.up = Gauge("citydata_component_up", "1 when a component is up", ["component"], registry=r)
        self._callbacks = _CallbackCollector()
        r.register(self._callbacks)

    def gauge_callback(self, name: str, doc: str, fn: Callable[[], dict[str, float]]) -> None:
        """Register a labelled gauge computed at scrape time."""
        self._callbacks.gauges[name] = (doc, fn)

    def render(self) -> bytes:
        return generate_latest(self.registry)
