"""The pages fed by the monitoring layer: latency and errors per version, drift with the
distributions of one feature, quality over time, alerts. Each checks the page's JSON
against the monitoring layer's own report for the same workspace."""

from __future__ import annotations

import datetime as dt
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
    assert set(d["versions"]) == logged
    page = client.get("/ui/deployments/fraud?window=1d", headers=h).text
    assert sum(d["totals"][v]["requests"] for v in d["versions"]) == len(facts["request_ids"])
    for v in d["versions"]:
        assert f"<td>v{v}</td>" in page


def test_drift_page_sorts_features_by_severity(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    report = mon.drift(ws, "fraud").to_dict()
    d = client.get("/ui/api/drift/fraud", headers=h).json()
    assert {f["name"] for f in d["features"]} == set(report["features"])
    drifted = [f["drifted"] for f in d["features"]]
    assert drifted == sorted(drifted, reverse=True)
    page = client.get("/ui/drift/fraud", headers=h).text
    for f in d["features"]:
        assert f'data-feature="{f["name"]}"' in page
    first = d["features"][0]["name"]
    dist = client.get("/ui/api/distribution", params={"reference": report["reference"], "current": report["current"], "column": first}, headers=h)
    assert dist.status_code == 200, dist.text
    doc = dist.json()
    assert sum(doc["reference"]) == pytest.approx(1.0) and sum(doc["current"]) == pytest.approx(1.0)


def test_events_page_lists_alerts(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    page = client.get("/ui/events", headers=bearer(facts["keys"]["read"])).text
    assert "monitoring not available" not in page
    assert len(mon.list_alerts(ws)) == page.count('<tr class="alert ')
