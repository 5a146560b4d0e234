"""Realised quality of live predictions once labels arrive, and its estimate before they do."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm
from starlette.testclient import TestClient

import strataml as st
from strataml.monitoring import quality
from strataml.serving import GatewayConfig, create_app, create_key, query_predictions

from .conftest import customers


def _send(ws: st.Workspace, table: pa.Table, fields: list[str], batch: int = 50) -> None:
    key = create_key(ws.catalog, ["predict:churn"])[1]
    rows = table.select(fields).to_pylist()
    app = create_app(ws, None, GatewayConfig(ratelimit_url="memory://"))
    with TestClient(app) as c:
        for i in range(0, len(rows), batch):
            r = c.post("/v1/models/churn/predict", json={"instances": rows[i : i + batch]}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text


def _ingest(ws: st.Workspace, table: pa.Table, contract: st.Contract) -> str:
    path = Path(ws.scratch_dir()) / f"l_{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    rep = st.ingest(ws, str(path), contract=contract)
    assert rep.status == "created", rep
    return f"{contract.name}@{rep.version}"


def test_quality_by_request_id_equals_scikit_learn_and_counts_unlabelled(mon_ws: st.Workspace) -> None:
    live = customers(800, 21)
    _send(mon_ws, live, ["tenure", "spend", "plan"])
    truth = dict(zip(live["tenure"].to_pylist(), live["churned"].to_pylist(), strict=True))
    logged = query_predictions(mon_ws.state_dir / "predictions", model="churn", limit=None)
    assert len(logged) == 800
    labelled = logged[:500]  # the other 300 still wait for their label
    labels = pa.table({"request_id": [r["request_id"] for r in labelled], "instance": [r["instance"] for r in labelled],
                       "churned": [truth[r["features"]["tenure"]] for r in labelled]})
    ref = _ingest(mon_ws, labels, st.Contract("churn_labels", key=["request_id", "instance"], columns=[
        st.Column("request_id", "string"), st.Column("instance", "int"), st.Column("churned", "int")]))
    rep = quality(mon_ws, "churn", ref).to_dict()
    assert rep["join"] == "request_id" and rep["kind"] == "binary" and rep["threshold"] == 0.5
    [row] = rep["rows"]
    assert row["version"] == 1 and row["labelled"] == 500 and row["unlabelled"] == 300
    y = np.array([truth[r["features"]["tenure"]] for r in labelled])
    p = np.array([float(r["output"]) for r in labelled])
    hard = (p >= 0.5).astype(int)
    assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert row["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert row["precision"] == pytest.approx(skm.precision_score(y, hard), abs=1e-12)
    assert row["recall"] == pytest.approx(skm.recall_score(y, hard), abs=1e-12)
    tn, fp, _, _ = skm.confusion_matrix(y, hard).ravel()
    assert row["fpr"] == pytest.approx(fp / (fp + tn), abs=1e-12)
    est = row["estimated"]
    assert est["rows"] == 800 and 0.5 < est["roc_auc"] < 1.0
    assert abs(est["roc_auc"] - row["roc_auc"]) < 0.08 and abs(est["accuracy"] - row["accuracy"]) < 0.08  # traffic like training
    hourly = quality(mon_ws, "churn", ref, by="hour").to_dict()
    assert sum(r["predictions"] for r in hourly["rows"]) == 800 and all(r["window"] for r in hourly["rows"])


def test_quality_by_entity_key_takes_the_first_label_within_the_horizon(mon_ws: st.Workspace) -> None:
    live = customers(300, 31)
    _send(mon_ws, live, ["id", "tenure", "spend", "plan"])
    ids = live["id"].to_pylist()
    now = dt.datetime.now(dt.UTC)
    # a third labelled within a day, a third 40 days later (past the default horizon), a third never
    at = [now + dt.timedelta(hours=2) if i % 3 == 0 else now + dt.timedelta(days=40) for i in range(200)]
    labels = pa.table({"id": ids[:200], "at": pa.array(at, pa.timestamp("us", tz="UTC")), "churned": live["churned"].to_pylist()[:200]})
    ref = _ingest(mon_ws, labels, st.Contract("late_labels", key="id", timestamp="at", columns=[
        st.Column("id", "string"), st.Column("at", "timestamp"), st.Column("churned", "int")]))
    mon_ws.definitions.add(st.Contract("late_labels", key="id", timestamp="at", columns=[
        st.Column("id", "string"), st.Column("at", "timestamp"), st.Column("churned", "int")]))
    rep = quality(mon_ws, "churn", ref).to_dict()
    assert rep["join"] == "entity:id"
    [row] = rep["rows"]
    assert row["labelled"] == 67 and row["unlabelled"] == 233
    assert quality(mon_ws, "churn", ref, horizon="60d").to_dict()["rows"][0]["labelled"] == 200


def test_bad_input_is_named(mon_ws: st.Workspace) -> None:
    with pytest.raises(st.StrataError, match="not a duration"):
        quality(mon_ws, "churn", "customers", horizon="soon")
    with pytest.raises(st.StrataError, match="--by"):
        quality(mon_ws, "churn", "customers", by="week")
