"""XGBoost models end to end: train, tune, gate, register, load, serve, in XGBoost's JSON format."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.models import UnsafeModel, get_model, load_model
from strataml.models._fitting import configure, fit
from strataml.models._predictor import prepare
from strataml.models._serialization import dump, load
from strataml.models._train import load_training_data, prepare_data, split_indices
from strataml.serving import score
from strataml.serving._servable import RegistryModels

from .conftest import loans_table

xgb = pytest.importorskip("xgboost")

INPUTS = ["amount", "age", "income", "country"]


def classifier(**kw: Any) -> Any:
    return xgb.XGBClassifier(n_estimators=kw.pop("n_estimators", 20), max_depth=3, n_jobs=1, **kw)


def model(name: str = "loans_xgb", **kw: Any) -> st.Model:
    args: dict[str, Any] = {
        "labels": "loans",
        "target": "defaulted",
        "columns": INPUTS,
        "estimator": classifier(),
        "metrics": ["roc_auc", "log_loss"],
    }
    args.update(kw)
    return st.Model(name, **args)


def in_memory(ws: st.Workspace, m: st.Model) -> Any:
    """The estimator exactly as training fits it, without serialisation."""
    data = load_training_data(ws, m)
    tr, ho, _ = split_indices(data, m)
    prepared = prepare_data(data, m, tr, ho)
    return fit(configure(m.estimator, {}, m.seed), prepared, m.name)


def test_xgboost_classifier_trains_registers_loads_and_serves(
    loans_ws: st.Workspace, tmp_path: Path
) -> None:
    m = model(gate=st.Gate(min={"roc_auc": 0.6}))
    r = st.train(loans_ws, m)
    assert r.version == 1 and r.gate["passed"] and r.aliases == {"champion": 1}
    lm = load_model(loans_ws, "loans_xgb")
    assert (
        lm.format == "xgboost"
        and get_model(loans_ws, "loans_xgb")["versions"][0]["format"] == "xgboost"
    )
    assert lm.signature["inputs"][3] == {"name": "country", "type": "string"}
    raw = loans_ws.artifacts.read_bytes(lm.sha256)
    assert json.loads(raw)["learner"]["objective"]["name"] == "binary:logistic"
    rows = loans_table(300, seed=7)
    p = lm.predict(rows)
    assert p.shape == (300,) and ((p > 0) & (p < 1)).all()
    # the registered model answers exactly like the estimator in memory
    est = in_memory(loans_ws, m)
    np.testing.assert_allclose(
        p, est.predict_proba(prepare(rows, lm.signature, "xgboost"))[:, 1], rtol=1e-6
    )
    records = rows.to_pylist()
    np.testing.assert_allclose(lm.predict(records), p, rtol=1e-6)
    np.testing.assert_allclose(
        lm.predict(records[:1]), p[:1], rtol=1e-6
    )  # one row: a single category
    # a country never seen in training, or none, is a missing value rather than an error
    unseen = [{**records[0], "country": "JP"}, {**records[0], "country": None}]
    a, b = lm.predict(unseen)
    assert a == b and 0 < a < 1
    # the gateway's servable and batch scoring go through the same predictor
    servable = RegistryModels(loans_ws).get("loans_xgb", "champion")
    np.testing.assert_allclose(servable.predict_rows(records[:50]), p[:50], rtol=1e-6)
    shipped = pickle.loads(pickle.dumps(lm.predictor))  # as Ray ships it to batch-scoring workers
    np.testing.assert_allclose(shipped.predict(rows), p, rtol=1e-6)
    pq.write_table(rows, tmp_path / "score.parquet")
    report = score(loans_ws, "loans_xgb", str(tmp_path / "score.parquet"), tmp_path / "out.parquet")
    assert report["rows"] == 300
    scored = pq.read_table(tmp_path / "out.parquet")
    np.testing.assert_allclose(scored["prediction"].to_numpy(), p, rtol=1e-6)


def test_xgboost_regressor(loans_ws: st.Workspace) -> None:
    m = model(
        "loans_loss_xgb",
        target="loss",
        estimator=xgb.XGBRegressor(n_estimators=30, max_depth=3, n_jobs=1),
        metrics=["rmse", "r2"],
    )
    r = st.train(loans_ws, m)
    assert r.version == 1 and r.metrics["r2"] > 0.1
    lm = load_model(loans_ws, "loans_loss_xgb")
    assert lm.kind == "regression"
    rows = loans_table(200, seed=3)
    est = in_memory(loans_ws, m)
    np.testing.assert_allclose(
        lm.predict(rows), est.predict(prepare(rows, lm.signature, "xgboost")), rtol=1e-6
    )


def test_xgboost_multiclass_with_string_labels(loans_ws: st.Workspace) -> None:
    m = model("loans_grade_xgb", target="grade", metrics=["accuracy", "log_loss"])
    r = st.train(loans_ws, m)
    assert r.version == 1 and r.metrics["accuracy"] > 0.6
    lm = load_model(loans_ws, "loans_grade_xgb")
    assert lm.signature["output"]["classes"] == ["A", "B", "C"]
    rows = loans_table(100, seed=4)
    out = lm.predict(rows)
    assert set(out[0]) == {"A", "B", "C"} and all(abs(sum(d.values()) - 1) < 1e-9 for d in out)
    # probability columns follow the signature's classes (the fitted labels are their indices)
    est = in_memory(loans_ws, m)
    expected = est.predict_proba(prepare(rows, lm.signature, "xgboost"))
    got = np.array([[d[c] for c in ("A", "B", "C")] for d in out])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_same_inputs_and_seed_give_a_byte_identical_xgboost_artifact(
    loans_ws: st.Workspace,
) -> None:
    est = classifier(subsample=0.8, colsample_bytree=0.8)
    a = st.train(loans_ws, model(estimator=est))
    b = st.train(loans_ws, model(estimator=est))
    assert a.sha256 == b.sha256 and (a.version, b.version) == (1, 2)
    assert hashlib.sha256(loans_ws.artifacts.read_bytes(a.sha256)).hexdigest() == a.sha256
    c = st.train(loans_ws, model(estimator=est), seed=1)
    assert c.sha256 != a.sha256


def test_xgboost_tuning_and_gate_against_champion(loans_ws: st.Workspace) -> None:
    first = st.train(loans_ws, model())
    gate = st.Gate(max_drop_vs_champion={"roc_auc": 0.2})
    r = st.train(loans_ws, model(gate=gate), tune=3)
    assert r.tuning is not None and r.tuning["trials"] == 3 and r.tuning["failed"] == 0
    assert {"max_depth", "learning_rate", "subsample"} <= set(r.tuning["best_params"])
    assert (
        r.champion is not None
        and r.champion["version"] == first.version
        and r.champion["metrics"]["roc_auc"] > 0.5
    )
    assert r.gate["passed"] and r.aliases == {"challenger": 2}


def test_xgboost_artifact_format_is_checked_before_parsing() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((300, 3))
    y = (x[:, 0] > 0.5).astype(int)
    est = xgb.XGBClassifier(n_estimators=3, n_jobs=1).fit(x, y)
    ser = dump(est)
    assert ser.format == "xgboost" and ser.data.startswith(b'{"learner"')
    np.testing.assert_allclose(
        load(ser.data, "xgboost").predict_proba(x), est.predict_proba(x), rtol=1e-6
    )
    for bad in (
        b"import os; os.system('id')",
        bytes(est.get_booster().save_raw("ubj")),
        b'{"learner": 1}',
        b"{not json",
    ):
        with pytest.raises(UnsafeModel, match="not an XGBoost JSON model"):
            load(bad, "xgboost")
    softmax = xgb.XGBClassifier(n_estimators=2, objective="multi:softmax", n_jobs=1).fit(
        x, (x[:, 1] * 3).astype(int)
    )
    with pytest.raises(UnsafeModel, match="does not serve"):
        dump(softmax)

