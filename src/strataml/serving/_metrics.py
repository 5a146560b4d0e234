"""Prometheus metrics of the gateway (every name starts with ``strata_``).

Each gateway owns a registry. With several worker processes (``strata serve
--workers N``) the values are shared through ``PROMETHEUS_MULTIPROC_DIR``, which
``serve`` sets before the workers start; ``/metrics`` then aggregates every worker.

What every request records (its latency, the request and prediction counts, the
batch size) is gathered in :class:`Tally` objects on the event loop and added to the
Prometheus values by :meth:`GatewayMetrics.publish`, which the gateway runs before each
scrape and every refresh interval: a Prometheus update takes a lock (and, with
several workers, writes a shared file) each time, several times per request. A scrape
thus sees this worker's requests up to that moment and other workers' as of their last
refresh.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST


# A Tally publishes a histogram's gathered observations by adding to its buckets and sum
# directly, which prometheus_client offers no public call for: the three functions below
# are the only code that touches its internals, checked once here, at import.
def _check_histogram_internals() -> None:
    # read from the code that makes a series, not from a series made here: with several
    # workers a series is a shared file, and a probe would show in /metrics
    from prometheus_client import values

    made = Histogram._metric_init.__code__.co_names
    if not ({"_upper_bounds", "_buckets", "_sum"} <= set(made) and hasattr(values.ValueClass, "inc")):
        from importlib.metadata import version

        raise ImportError(
            f"prometheus_client {version('prometheus-client')} lays out histograms differently from what the gateway's "
            "metrics expect (_upper_bounds, and _buckets and _sum values with inc()); "
            "install a release that has them: pip install 'prometheus-client>=0.20,<0.27'"
        )


_check_histogram_internals()


def histogram_bounds(child: Any) -> list[float]:
    """The upper bounds of a labelled histogram series' buckets (the last is +Inf)."""
    bounds: list[float] = child._upper_bounds
    return bounds


def add_to_histogram(child: Any, counts: list[int], total: float) -> None:
    """Add ``counts`` observations per bucket (cumulative counts are computed at
    exposition), summing to ``total``, to a labelled histogram series."""
    child._sum.inc(total)
    for bucket, n in zip(child._buckets, counts, strict=True):
        if n:
            bucket.inc(n)


class Tally:
    """Increments of one counter (or observations of one histogram) of labelled series
    ``child``, gathered until :meth:`publish`. Used from the event loop's thread only."""

    __slots__ = ("_bounds", "_counts", "_n", "child", "pending")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.pending = 0.0  # counter increments, or the histogram's sum of observations
        self._bounds: tuple[float, ...] | list[float] = histogram_bounds(child) if hasattr(child, "observe") else ()
        self._counts = [0] * len(self._bounds)
        self._n = 0  # observations gathered

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter."""
        self.pending += amount

    def observe(self, value: float) -> None:
        """Observe ``value`` in a histogram."""
        self._counts[bisect_left(self._bounds, value)] += 1  # the first bucket whose bound is >= value, as Prometheus buckets it
        self.pending += value
        self._n += 1

    def publish(self) -> None:
        """Add what was gathered to the Prometheus series."""
        if not self._bounds:
            if self.pending:
                amount, self.pending = self.pending, 0.0
                self.child.inc(amount)
            return
        if not self._n:
            return
        counts, total = self._counts, self.pending
        self._counts, self.pending, self._n = [0] * len(counts), 0.0, 0
        add_to_histogram(self.child, counts, total)


class GatewayMetrics:
    """The gateway's metric families."""

    def __init__(self) -> None:
        self._tallies: list[Tally] = []
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            "strata_request_duration_seconds", "Request latency by route, model, version and status.",
            ["route", "model", "version", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.requests = Counter("strata_requests_total", "Requests by route, model, version and status.", ["route", "model", "version", "status"], registry=r)
        self.predictions = Counter("strata_predictions_total", "Predictions served, by model, version and mode (live/shadow).", ["model", "version", "mode", "degraded"], registry=r)
        self.batch_size = Histogram("strata_batch_size", "Rows per coalesced model call.", ["model", "version"], buckets=BATCH_BUCKETS, registry=r)
        self.cache = Counter("strata_cache_requests_total", "Response-cache lookups by result (hit/miss).", ["model", "result"], registry=r)
        self.breaker = Gauge("strata_breaker_state", "Circuit-breaker state: 0 closed, 1 half-open, 2 open.", ["breaker"], registry=r, multiprocess_mode="max")
        self.rate_limited = Counter("strata_rate_limited_total", "Requests refused by the rate limiter (429), by scope.", ["scope"], registry=r)
        self.auth_failures = Counter("strata_auth_failures_total", "Requests refused for missing, invalid or revoked keys, or missing scope.", ["status"], registry=r)
        self.overloaded = Counter("strata_overload_rejections_total", "Requests refused at once because the gateway was at its concurrency limit.", registry=r)
        self.fallbacks = Counter("strata_fallbacks_total", "Degraded responses by fallback step.", ["model", "step"], registry=r)
        self.inflight = Gauge("strata_inflight_requests", "Requests in flight.", registry=r, multiprocess_mode="livesum")
        self.backend_failures = Counter("strata_backend_failures_total", "Failed, timed-out or breaker-refused calls to a backend (rate-limit store, online store, cache), by backend and what the gateway did instead.", ["backend", "action"], registry=r)
        self.missing_features = Counter("strata_missing_features_total", "Instances whose entity the online store does not know, by model and the deployment's unknown_entity setting.", ["model", "action"], registry=r)
        self.audit_flushes = Counter("strata_audit_flushes_total", "Group commits of the prediction log.", registry=r)

    def tally(self, child: Any) -> Tally:
        """A :class:`Tally` of the labelled series ``child`` (a counter's or a histogram's)."""
        t = Tally(child)
        self._tallies.append(t)
        return t

    def publish(self) -> None:
        """Add every tally's gathered values to the Prometheus series."""
        for t in self._tallies:
            t.publish()

    def follow_inflight(self, count: Callable[[], float]) -> bool:
        """Read the in-flight gauge from ``count`` at each scrape instead of counting every
        request in and out; True when that is possible (one process: a multi-process
        gauge must be counted, since each worker writes its own file)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return False
        self.inflight.set_function(count)
        return True

    def render(self) -> bytes:
        """The exposition text (aggregated across workers in multi-process mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
