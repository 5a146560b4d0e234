"""The pages fed by the monitoring layer: latency and errors per version, drift with the
distributions of one feature, quality over time, alerts. Each checks the page's JSON
against the monitoring layer's own report for the same workspace."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

import strataml as st

mon = pytest.importorskip("strataml.monitoring", reason="the monitoring layer is not in this build")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _epoch(t: Any) -> float:
    v = t if isinstance(t, dt.datetime) else dt.datetime.fromisoformat(str(t))
    return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()


def test_deployment_page_charts_the_slo_report(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    if not hasattr(mon, "slo"):
        pytest.skip("this build's monitoring layer has no slo()")
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    report = mon.slo(ws, "fraud", window="1d", bucket="1m").to_dict()
    assert report["series"], "the fixture logged predictions"
    d = client.get("/ui/api/deployments/fraud/slo?window=1d&bucket=1m", headers=h).json()
    assert d["x"] == sorted({_epoch(p["t"]) for p in report["series"]})
    for p in report["series"]:
        i, v = d["x"].index(_epoch(p["t"])), d["versions"].index(str(p["version"]))
        assert d["charts"]["rate"][v]["values"][i] == pytest.approx(p["requests"] / 60)
        for m in ("errors", "p50", "p95", "p99"):
            assert d["charts"][m][v]["values"][i] == pytest.approx(p[m])
    logged = {str(ver) for _, ver in facts["request_ids"]}
    assert set(d["versions"]) >= logged
    page = client.get("/ui/deployments/fraud?window=1d", headers=h).text
    assert sum(d["totals"][v]["requests"] for v in d["versions"]) == facts["requests"]
    for v in d["versions"]:
        assert f"<td>v{v}</td>" in page


def test_drift_page_sorts_features_by_severity(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    report = mon.drift(ws, "fraud").to_dict()
    d = client.get("/ui/api/drift/fraud", headers=h).json()
    assert {f["name"] for f in d["features"]} == set(report["features"])
    assert d["reference"] == report["reference"] and d["rows"] == report["rows"]
    for f in d["features"]:
        assert {k: f[k] for k in report["features"][f["name"]]} == report["features"][f["name"]]
    drifted = [f["drifted"] for f in d["features"]]
    # the request-time amount was shifted: it drifted, and drifted features come first
    assert drifted == sorted(drifted, reverse=True) and drifted[0] and report["features"]["amount_log"]["drifted"]
    page = client.get("/ui/drift/fraud", headers=h).text
    assert [m for m in re.findall(r'data-feature="([^"]+)"', page)] == [f["name"] for f in d["features"]]

    reference = mon.profile(ws, "fraud@v1").to_dict()["columns"]
    current = mon.window_profile(ws, "fraud", 1).to_dict()["columns"]
    for f in d["features"]:
        dist = client.get("/ui/api/drift/fraud/distribution", params={"column": f["name"]}, headers=h)
        assert dist.status_code == 200, dist.text
        doc = dist.json()
        for side, prof in (("reference", reference), ("current", current)):
            counted = prof[f["name"]]["count"]
            assert doc["stats"][side]["count"] == counted
            assert sum(doc[side]) == pytest.approx(1.0 if counted else 0.0), (f["name"], side)
        if doc["kind"] == "numeric" and doc["edges"]:
            sides = [p[f["name"]] for p in (reference, current) if p[f["name"]]["count"]]
            assert doc["edges"][0] == pytest.approx(min(c["min"] for c in sides))
            assert doc["edges"][-1] == pytest.approx(max(c["max"] for c in sides))
    assert client.get("/ui/api/drift/fraud/distribution", params={"column": "nope"}, headers=h).status_code == 409


def test_events_page_lists_alerts(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    if not hasattr(mon, "list_alerts"):
        pytest.skip("this build's monitoring layer has no list_alerts()")
    ws, facts = dash
    page = client.get("/ui/events", headers=bearer(facts["keys"]["read"])).text
    assert "monitoring not available" not in page
    assert len(mon.list_alerts(ws)) == page.count('<tr class="alert ')


def test_quality_page_charts_the_quality_report(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    if not hasattr(mon, "quality"):
        pytest.skip("this build's monitoring layer has no quality()")
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    report = mon.quality(ws, "fraud", "fraud_outcomes", by="hour").to_dict()
    d = client.get("/ui/api/quality/fraud?labels=fraud_outcomes&by=hour", headers=h).json()
    assert report["rows"] and d["rows"] == report["rows"]
    lines = {(m, s["label"]): s["values"] for m, series in d["charts"].items() for s in series}
    assert lines, "estimates at least: the model is a binary classifier"
    for r in report["rows"]:
        i = d["x"].index(_epoch(r["window"]))
        for metric, value in (r.get("estimated") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert lines[(metric, f"v{r['version']} estimated")][i] == pytest.approx(value)
    page = client.get("/ui/quality/fraud?labels=fraud_outcomes&by=hour", headers=h).text
    assert 'value="fraud_outcomes"' in page
    # the labels the model was trained on carry no request id: the page says why it cannot join them
    unjoinable = client.get("/ui/quality/fraud", headers=h)
    assert unjoinable.status_code == 409 and "request_id" in unjoinable.text
    for metric in d["charts"]:
        assert f'data-metric="{metric}"' in page
    for r in report["rows"]:
        i = d["x"].index(_epoch(r["window"]))
        for metric, value in r.items():
            if metric not in ("version", "window", "predictions", "labelled", "unlabelled", "estimated") and isinstance(value, float):
                assert lines[(metric, f"v{r['version']} realised")][i] == pytest.approx(value)
    assert sum(r["labelled"] for r in report["rows"]) == len(facts["request_ids"])
    assert client.get("/ui/api/quality/fraud?labels=fraud_outcomes&by=week", headers=h).status_code == 409
