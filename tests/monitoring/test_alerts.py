"""Alert rules: fire once, resolve once, events in the catalog, webhooks that never block."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

import strataml as st
from strataml.monitoring import AlertRule, check_alerts, list_alerts, run_monitor
from strataml.serving import GatewayConfig, create_app, create_key
from strataml.spine import list_events

from .conftest import customers


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.received = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


def _traffic(ws: st.Workspace, good: int, bad: int) -> None:
    key = create_key(ws.catalog, ["predict:churn"])[1]
    rows = customers(max(good, 1), 3).select(["tenure", "spend", "plan"]).to_pylist()
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(ws, None, GatewayConfig(ratelimit_url="memory://"))) as c:
        for i in range(good):
            assert c.post("/v1/models/churn/predict", json={"instances": rows[i : i + 1]}, headers=auth).status_code == 200
        for _ in range(bad):
            assert c.post("/v1/models/churn/predict", json={"instances": [{"tenure": "x"}]}, headers=auth).status_code == 422


def _dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    return f"http://127.0.0.1:{port}/hook"


def test_error_rate_alert_fires_once_resolves_once_with_events_and_webhook(mon_ws: st.Workspace, hook: str) -> None:
    rule = AlertRule("churn-errors", model="churn", metric="error_rate", threshold=0.2, window="1h", severity="page",
                     cooldown="0s", webhook=hook)
    mon_ws.definitions.add(rule)
    _traffic(mon_ws, good=10, bad=10)  # 50% errors
    [ev] = check_alerts(mon_ws)
    assert ev.kind == "fired" and ev.value == pytest.approx(0.5) and ev.severity == "page"
    assert check_alerts(mon_ws) == []  # still firing: no second firing
    [a] = list_alerts(mon_ws, state="firing")
    assert a.rule == "churn-errors" and a.value == pytest.approx(0.5)
    _traffic(mon_ws, good=30, bad=0)  # 10/50 = 0.2: not past the threshold by the hysteresis yet
    assert check_alerts(mon_ws) == []
    _traffic(mon_ws, good=30, bad=0)  # 10/80 = 0.125 < 0.18
    [res] = check_alerts(mon_ws)
    assert res.kind == "resolved" and list_alerts(mon_ws, state="firing") == []
    kinds = [e.kind for e in list_events(mon_ws.catalog, kind="alert.")]
    assert kinds == ["alert.fired", "alert.resolved"]
    assert [b["kind"] for b in _Hook.received] == ["fired", "resolved"] and _Hook.received[0]["rule"] == "churn-errors"


def test_burn_rate_needs_both_windows_and_a_dead_webhook_does_not_block(mon_ws: st.Workspace) -> None:
    rule = AlertRule("churn-burn", model="churn", metric="error_rate", slo=0.99, threshold=14.4, fast_window="5m",
                     slow_window="1h", webhook=_dead_url())
    _traffic(mon_ws, good=20, bad=20)
    t0 = time.monotonic()
    [ev] = check_alerts(mon_ws, [rule])
    assert time.monotonic() - t0 < 8
    assert ev.details["burn_fast"] == pytest.approx(50.0) and ev.details["burn_slow"] == pytest.approx(50.0)


def test_estimated_quality_rule_and_run_until_stopped(mon_ws: st.Workspace) -> None:
    _traffic(mon_ws, good=60, bad=0)
    rule = AlertRule("churn-auc", model="churn", metric="quality", quality_metric="estimated_roc_auc", threshold=0.99)
    assert rule.direction == "below"
    mon_ws.definitions.add(rule)
    stop = threading.Event()
    assert run_monitor(mon_ws, "1s", stop=stop, iterations=2) == 2
    [a] = list_alerts(mon_ws)
    assert a.state == "firing" and a.value is not None and 0.5 < a.value < 0.99
    assert len(list_events(mon_ws.catalog, kind="alert.fired")) == 1


def test_bad_rules_are_named() -> None:
    with pytest.raises(st.StrataError, match="unknown metric"):
        AlertRule("x", model="m", metric="latency", threshold=1)
    with pytest.raises(st.StrataError, match="needs labels"):
        AlertRule("x", model="m", metric="quality", quality_metric="roc_auc", threshold=0.8)
