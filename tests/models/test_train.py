"""Training without feature views: split, fit, holdout metrics, gates, lineage, reproducibility."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import strataml as st
from strataml.errors import ConfigError, UserCodeError
from strataml.models import get_model, get_run, list_runs, load_model, model_lineage
from strataml.models._train import load_training_data, split_indices
from strataml.spine._events import list_events

from .conftest import loans_table

INPUTS = ["amount", "age", "income", "country"]


def lgbm(**kw: object) -> LGBMClassifier:
    return LGBMClassifier(n_estimators=kw.pop("n_estimators", 30), n_jobs=1, **kw)


def model(name: str = "loans_default", **kw: object) -> st.Model:
    args: dict[str, object] = {"labels": "loans", "target": "defaulted", "columns": INPUTS, "estimator": lgbm(), "metrics": ["roc_auc", "log_loss"]}
    args.update(kw)
    return st.Model(name, **args)  # type: ignore[arg-type]


def test_train_registers_champion_with_signature_metrics_and_lineage(loans_ws: st.Workspace) -> None:
    r = st.train(loans_ws, model(gate=st.Gate(min={"roc_auc": 0.6})))
    assert r.version == 1 and r.gate["status"] == "passed" and r.gate["reasons"] == []
    assert r.aliases == {"champion": 1}
    assert 0.6 < r.metrics["roc_auc"] <= 1.0 and r.metrics["log_loss"] > 0
    lm = load_model(loans_ws, "loans_default")
    assert (lm.name, lm.version, lm.feature_views) == ("loans_default", 1, [])
    assert lm.signature["inputs"] == [
        {"name": "amount", "type": "float"}, {"name": "age", "type": "int"},
        {"name": "income", "type": "float"}, {"name": "country", "type": "string"},
    ]
    assert lm.signature["output"] == {"kind": "binary", "classes": [0, 1], "target": "defaulted"}
    rows = loans_table(50, seed=9)
    p = lm.predict(rows)
    assert p.shape == (50,) and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(lm.predict(rows.to_pandas()), p)
    np.testing.assert_allclose(lm.predict(rows.to_pylist()), p)
    # the registry's version carries the run, sha256, metrics and full lineage
    v = get_model(loans_ws, "loans_default")["versions"][0]
    assert v["sha256"] == r.sha256 == lm.sha256 and v["run"] == r.run and v["metrics"] == r.metrics
    lin = v["lineage"]
    assert lin["datasets"] == ["loans@v1"] and lin["training_set"] is None and lin["seed"] == 0
    assert set(lin["code"]) == {"git_commit", "git_dirty", "definitions_sha256"}
    assert {"python", "lightgbm", "scikit-learn", "numpy", "strataml"} <= set(lin["packages"])
    run = get_run(loans_ws, r.run)
    assert run["kind"] == "train" and run["status"] == "finished"
    assert run["params"]["n_estimators"] == 30 and run["params"]["seed"] == 0 and run["params"]["split"] == "time"
    assert {"load_s", "split_s", "fit_s", "evaluate_s", "gate_s", "register_s", "total_s"} <= set(run["timings"])
    assert [a["sha256"] for a in run["artifacts"]] == [r.sha256]
    full = model_lineage(loans_ws, "loans_default")
    assert full["datasets"][0]["ref"] == "loans@v1" and full["datasets"][0]["source"].endswith("loans.parquet")


def test_time_split_holds_out_the_latest_rows(loans_ws: st.Workspace) -> None:
    m = model()
    data = load_training_data(loans_ws, m)
    tr, ho, kind = split_indices(data, m)
    assert kind == "time" and len(ho) == 800 and len(tr) == 3200
    ts = data.table["ts"].to_numpy()
    assert ts[ho].min() >= ts[tr].max()


def test_random_split_without_timestamp_is_seeded(workspace: st.Workspace, tmp_path: Path) -> None:
    t = loans_table(1000).drop_columns(["ts"])
    pq.write_table(t, tmp_path / "nots.parquet")
    contract = st.Contract("nots", key="loan_id", columns=[
        st.Column("loan_id", "string"), st.Column("amount", "float"), st.Column("age", "int"),
        st.Column("income", "float", nullable=True), st.Column("country", "string"), st.Column("defaulted", "int"),
        st.Column("grade", "string"), st.Column("loss", "float"),
    ])
    st.ingest(workspace, str(tmp_path / "nots.parquet"), contract=contract)
    m = model(labels="nots", split=st.Split(seed=7))
    data = load_training_data(workspace, m)
    tr1, ho1, kind = split_indices(data, m)
    _, ho2, _ = split_indices(data, m)
    assert kind == "random" and list(ho1) == list(ho2) and len(set(tr1) & set(ho1)) == 0
    _, ho3, _ = split_indices(data, model(labels="nots", split=st.Split(seed=8)))
    assert list(ho3) != list(ho1)
    with pytest.raises(ConfigError, match="no timestamp"):
        split_indices(data, model(labels="nots", split="time"))


def test_same_inputs_and_seed_give_a_byte_identical_artifact(loans_ws: st.Workspace) -> None:
    a = st.train(loans_ws, model(estimator=lgbm(subsample=0.8, subsample_freq=1, colsample_bytree=0.8)))
    b = st.train(loans_ws, model(estimator=lgbm(subsample=0.8, subsample_freq=1, colsample_bytree=0.8)))
    assert a.sha256 == b.sha256
    data = loans_ws.artifacts.read_bytes(a.sha256)
    assert hashlib.sha256(data).hexdigest() == a.sha256
    c = st.train(loans_ws, model(estimator=lgbm(subsample=0.8, subsample_freq=1, colsample_bytree=0.8)), seed=1)
    assert c.sha256 != a.sha256
    # a scikit-learn pipeline (skops) is reproducible too
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["country"]), remainder=StandardScaler()),
        LogisticRegression(max_iter=200),
    )
    m = model("loans_lr", estimator=pipe, columns=["amount", "age", "country"])
    s1, s2 = st.train(loans_ws, m), st.train(loans_ws, m)
    assert s1.sha256 == s2.sha256 and s1.version == 1 and s2.version == 2


def test_failed_absolute_gate_registers_nothing_and_says_why(loans_ws: st.Workspace) -> None:
    r = st.train(loans_ws, model(gate=st.Gate(min={"roc_auc": 0.999}, max={"log_loss": 0.01})))
    assert r.version is None and r.gate["status"] == "failed" and not r.gate["passed"]
    assert any("roc_auc" in x and "below the minimum 0.999" in x for x in r.gate["reasons"])
    assert any("log_loss" in x and "above the maximum 0.01" in x for x in r.gate["reasons"])
    assert list_runs(loans_ws, name="loans_default")[0]["status"] == "finished"
    assert not [e for e in list_events(loans_ws.catalog, kind="model.")]


def test_gate_against_champion_on_the_same_holdout(loans_ws: st.Workspace) -> None:
    gate = st.Gate(max_drop_vs_champion={"roc_auc": 0.01})
    first = st.train(loans_ws, model(gate=gate))
    weak = st.train(loans_ws, model(gate=gate, columns=["age"], estimator=lgbm(n_estimators=2, num_leaves=2)))
    assert weak.version is None
    assert weak.champion is not None and weak.champion["version"] == 1
    # the champion was re-evaluated on this run's holdout: the same rows give the same value
    assert weak.champion["metrics"]["roc_auc"] == pytest.approx(first.metrics["roc_auc"])
    assert any("below the champion" in x for x in weak.gate["reasons"])
    assert [v["version"] for v in get_model(loans_ws, "loans_default")["versions"]] == [1]
    ok = st.train(loans_ws, model(gate=gate, estimator=lgbm(n_estimators=40)))
    assert ok.version == 2 and ok.aliases == {"challenger": 2}
    promoted = st.train(loans_ws, model(gate=gate, estimator=lgbm(n_estimators=40)), promote=True)
    assert promoted.aliases == {"champion": 3}


def test_regression_and_multiclass_outputs(loans_ws: st.Workspace) -> None:
    reg = st.train(loans_ws, st.Model("loss", labels="loans", target="loss", columns=["amount", "age", "income"],
                                      estimator=LGBMRegressor(n_estimators=20, n_jobs=1)))
    assert set(reg.metrics) == {"rmse", "mae", "r2"}
    lm = load_model(loans_ws, "loss")
    assert lm.signature["output"]["kind"] == "regression"
    assert lm.predict(loans_table(5, seed=3)).dtype == np.float64
    ridge = st.train(loans_ws, st.Model("loss_ridge", labels="loans", target="loss", columns=["amount", "age"],
                                        estimator=make_pipeline(StandardScaler(), Ridge())))
    assert ridge.version == 1 and load_model(loans_ws, "loss_ridge").format == "skops"
    multi = st.train(loans_ws, st.Model("grade", labels="loans", target="grade", columns=["amount", "age", "income", "country"],
                                        estimator=lgbm(), metrics=["accuracy", "log_loss"]))
    assert multi.metrics["accuracy"] > 0.5
    out = load_model(loans_ws, "grade").predict(loans_table(3, seed=4))
    assert len(out) == 3 and set(out[0]) == {"A", "B", "C"} and sum(out[0].values()) == pytest.approx(1.0)


def test_bad_definitions_give_clear_errors(loans_ws: st.Workspace) -> None:
    with pytest.raises(ConfigError, match="unknown metric"):
        model(metrics=["auc"])
    with pytest.raises(ConfigError, match="target 'nope' is not a column"):
        st.train(loans_ws, model(target="nope"))
    with pytest.raises(ConfigError, match="does not apply"):
        st.train(loans_ws, model(metrics=["rmse"]))
    with pytest.raises(UserCodeError, match="fit raised"):
        st.train(loans_ws, model("strings", estimator=LogisticRegression(), columns=["country"]))
    assert list_runs(loans_ws, name="strings")[0]["status"] == "failed"
    table = pa.table({"amount": [1.0]})
    st.train(loans_ws, model())
    with pytest.raises(st.StrataError, match="missing feature"):
        load_model(loans_ws, "loans_default").predict(table)
