"""Gathered metrics publish exactly what direct Prometheus updates would."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from strataml.serving._metrics import LATENCY_BUCKETS, GatewayMetrics


def test_tallies_publish_what_direct_updates_would() -> None:
    values = [0.0, 0.0004, 0.0005, 0.00051, 0.003, 0.02, 4.9, 5.0, 7.5, 0.001]
    direct = CollectorRegistry()
    h = Histogram("strata_request_duration_seconds", "d", ["route"], buckets=LATENCY_BUCKETS, registry=direct).labels("r")
    c = Counter("strata_requests_total", "d", ["route"], registry=direct).labels("r")
    for v in values:
        h.observe(v)
        c.inc()

    m = GatewayMetrics()
    th = m.tally(m.latency.labels("r", "m", "1", "200"))
    tc = m.tally(m.requests.labels("r", "m", "1", "200"))
    for v in values[:4]:
        th.observe(v)
        tc.inc()
    text = generate_latest(m.registry).decode()
    assert 'strata_requests_total{model="m",route="r",status="200",version="1"} 0.0' in text  # gathered, not yet published
    m.publish()
    for v in values[4:]:
        th.observe(v)
        tc.inc()
    m.publish()
    m.publish()  # publishing twice adds nothing twice

    def samples(text: str, name: str) -> list[tuple[str | None, str]]:  # (le, value) of each sample; the other labels differ
        return sorted((m.group(1) if (m := re.search(r'le="([^"]+)"', line)) else None, line.split()[-1])
                      for line in text.splitlines() if line.startswith(name + "{"))

    got = generate_latest(m.registry).decode()
    want = generate_latest(direct).decode()
    for name in ("strata_request_duration_seconds_bucket", "strata_request_duration_seconds_count", "strata_request_duration_seconds_sum", "strata_requests_total"):
        assert samples(got, name) == samples(want, name), name


def test_a_prometheus_client_laying_out_histograms_otherwise_is_refused_by_the_import_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import prometheus_client

    from strataml.serving import _metrics as metrics_module

    def other_layout(self: object) -> None:  # what a release keeping its buckets elsewhere would look like
        self.__dict__["values"] = []

    metrics_module._check_histogram_internals()  # the installed release passes
    monkeypatch.setattr(prometheus_client.Histogram, "_metric_init", other_layout)
    with pytest.raises(ImportError, match=r"pip install 'prometheus-client"):
        metrics_module._check_histogram_internals()
