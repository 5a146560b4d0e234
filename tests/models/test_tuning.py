"""Tuning: Optuna trials as child runs, the best trial trained and gated; Ray as the engine."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import strataml as st
from strataml.models import get_model, get_run, list_runs


def _model(**kw: object) -> st.Model:
    args: dict[str, object] = {
        "labels": "loans", "target": "defaulted", "columns": ["amount", "age", "income", "country"],
        "estimator": LGBMClassifier(n_estimators=15, n_jobs=1), "metrics": ["roc_auc"],
        "tune": st.Tune(params={"num_leaves": ("int", 4, 32), "learning_rate": ("float", 0.02, 0.3, "log")}, trials=4),
    }
    args.update(kw)
    return st.Model("tuned", **args)  # type: ignore[arg-type]


def test_trials_are_child_runs_and_the_best_goes_through_the_gate(loans_ws: st.Workspace) -> None:
    r = st.train(loans_ws, _model(gate=st.Gate(min={"roc_auc": 0.99})))
    t = r.tuning
    assert t is not None and t["trials"] == 4 and t["engine"] == "local" and t["metric"] == "roc_auc"
    children = list_runs(loans_ws, parent=r.run)
    assert len(children) == 4 and {c["kind"] for c in children} == {"trial"}
    best = max(children, key=lambda c: c["metrics"]["roc_auc"])
    assert best["id"] == t["best_run"] and best["metrics"]["roc_auc"] == pytest.approx(t["best_value"])
    assert {k: best["params"][k] for k in t["best_params"]} == t["best_params"]
    parent = get_run(loans_ws, r.run)
    assert parent["children"] and len(parent["history"]["tune_roc_auc"]) == 4
    assert [s for s, _ in parent["history"]["tune_best_roc_auc"]] == [0, 1, 2, 3]
    assert parent["params"]["num_leaves"] == t["best_params"]["num_leaves"]
    # the final fit used the best trial's parameters; this strict gate fails, so nothing is registered
    assert r.version is None and "below the minimum 0.99" in r.gate["reasons"][0]
    passed = st.train(loans_ws, _model(), tune=3)
    assert passed.version == 1 and passed.tuning is not None and passed.tuning["trials"] == 3
    assert get_model(loans_ws, "tuned")["versions"][0]["params"]["learning_rate"] == pytest.approx(passed.tuning["best_params"]["learning_rate"])


def test_tuning_same_seed_same_result(loans_ws: st.Workspace) -> None:
    a = st.train(loans_ws, _model(), tune=3)
    b = st.train(loans_ws, _model(), tune=3)
    assert a.tuning is not None and b.tuning is not None
    assert a.tuning["best_params"] == b.tuning["best_params"] and a.sha256 == b.sha256


def test_sklearn_model_needs_a_space(loans_ws: st.Workspace) -> None:
    m = st.Model("lr", labels="loans", target="defaulted", columns=["amount", "age"],
                 estimator=make_pipeline(StandardScaler(), LogisticRegression()))
    with pytest.raises(st.StrataError, match="declares no tuning space"):
        st.train(loans_ws, m, tune=2)
    m2 = st.Model("lr", labels="loans", target="defaulted", columns=["amount", "age"],
                  estimator=make_pipeline(StandardScaler(), LogisticRegression()),
                  tune=st.Tune(params={"logisticregression__C": ("float", 0.01, 10.0, "log")}))
    r = st.train(loans_ws, m2, tune=2)
    assert r.version == 1 and "logisticregression__C" in r.tuning["best_params"]  # type: ignore[index]


@pytest.fixture
def local_ray() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'strataml[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_engine_runs_trials_as_ray_tasks(loans_ws: st.Workspace, local_ray: object) -> None:
    r = st.train(loans_ws, _model(), tune=4, engine="ray")
    assert r.tuning is not None and r.tuning["engine"] == "ray" and r.tuning["trials"] == 4
    children = list_runs(loans_ws, parent=r.run)
    assert len(children) == 4 and all(c["status"] == "finished" for c in children)
    assert all(get_run(loans_ws, c["id"])["tags"]["engine"] == "ray" for c in children)
    local = st.train(loans_ws, _model(), tune=1)
    assert get_run(loans_ws, local.tuning["runs"][0])["tags"]["worker"]["pid"] == os.getpid()  # type: ignore[index]
    assert r.version == 1
    # the trials ran in Ray worker processes, not in this one
    workers = [get_run(loans_ws, c["id"])["tags"]["worker"]["pid"] for c in children]
    assert os.getpid() not in workers


def test_a_space_function_that_exits_is_an_error_naming_its_line() -> None:
    import optuna

    from strataml.errors import UserCodeError

    def space(trial: object) -> dict[str, object]:
        raise SystemExit(0)

    with pytest.raises(UserCodeError, match=r"test_tuning.py:\d+: the tune space function .*space raised SystemExit"):
        st.Tune(space=space).suggest(optuna.trial.FixedTrial({}))
