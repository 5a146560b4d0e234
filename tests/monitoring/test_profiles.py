"""Dataset and model profiles, stored once and reused; dataset drift from the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import orjson
import pytest
from scipy import stats as sps

import strataml as st
from strataml.monitoring import Profile, dataset_drift, profile

from .conftest import customers, put

FIELDS = {"kind", "test", "statistic", "p_value", "psi", "distance", "drifted"}


def test_dataset_profile_has_the_documented_shape_and_is_stored_once(mon_ws: st.Workspace) -> None:
    p = profile(mon_ws, "customers@v1")
    d = p.to_dict()
    raw = st.dataset("customers@v1", mon_ws).to_arrow()
    tenure = d["columns"]["tenure"]
    assert set(tenure) == {"kind", "count", "nulls", "mean", "std", "min", "max", "quantiles", "histogram"}
    assert tenure["count"] == raw.num_rows and tenure["nulls"] == 0
    values = raw["tenure"].to_numpy()
    assert tenure["mean"] == pytest.approx(values.mean()) and tenure["std"] == pytest.approx(values.std(ddof=1))
    assert tenure["min"] == values.min() and tenure["max"] == values.max()
    assert list(tenure["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    assert tenure["quantiles"]["p50"] == pytest.approx(np.quantile(values, 0.5), rel=0.02)
    assert sum(tenure["histogram"]["counts"]) == raw.num_rows and len(tenure["histogram"]["edges"]) == len(tenure["histogram"]["counts"]) + 1
    plan = d["columns"]["plan"]
    assert plan["kind"] == "categorical" and plan["counts"]["__other__"] == 0
    assert {k: v for k, v in plan["counts"].items() if k != "__other__"} == {
        k: int(v) for k, v in zip(*np.unique(raw["plan"].to_numpy(zero_copy_only=False), return_counts=True), strict=True)}
    again = profile(mon_ws, "customers@v1")
    assert again.sha256 == p.sha256 and again.to_dict() == d  # read back, not rebuilt
    assert isinstance(again, Profile) and again.heldout is None


def test_dataset_drift_flags_the_shifted_columns_only(mon_ws: st.Workspace) -> None:
    put(mon_ws, customers(4000, 7, shift=1.0))  # customers@v2: spend and plan shifted, tenure not
    rep = dataset_drift(mon_ws, "customers@v1", "customers@v2").to_dict()
    assert list(rep) == ["reference", "current", "rows", "features", "drift_share", "drifted"]
    assert rep["reference"] == "customers@v1" and rep["current"] == "customers@v2"
    assert set(rep["features"]) == {"tenure", "spend", "plan", "churned"}  # the profiled columns both share
    assert all(set(f) >= FIELDS for f in rep["features"].values())
    assert rep["features"]["spend"]["drifted"] and rep["features"]["plan"]["drifted"] and rep["features"]["plan"]["test"] == "chi2"
    assert not rep["features"]["tenure"]["drifted"]
    a = st.dataset("customers@v1", mon_ws).to_arrow()["spend"].to_numpy()
    b = st.dataset("customers@v2", mon_ws).to_arrow()["spend"].to_numpy()
    assert abs(rep["features"]["spend"]["statistic"] - sps.ks_2samp(a, b).statistic) < 0.01
    only = dataset_drift(mon_ws, "customers@v1", "customers@v2", columns=["tenure", "nope"]).to_dict()
    assert list(only["features"]) == ["tenure", "nope"] and only["features"]["nope"]["reason"] == "absent on both sides (check the name)"


def test_cli_profile_and_drift_json(mon_ws: st.Workspace, cli_env: dict[str, str]) -> None:
    put(mon_ws, customers(4000, 7, shift=1.0))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "strataml", *args, "--workspace", str(mon_ws.root)],
                              capture_output=True, text=True, env=cli_env, timeout=120)

    r = run("monitor", "drift", "--reference", "customers@v1", "--current", "customers@v2", "--columns", "spend,plan", "--json")
    assert r.returncode == 0, r.stderr
    doc = orjson.loads(r.stdout)
    assert list(doc["features"]) == ["spend", "plan"] and doc["drifted"] is True and doc["drift_share"] == 1.0
    r = run("monitor", "profile", "customers@v2", "--json")
    assert r.returncode == 0 and orjson.loads(r.stdout)["columns"]["plan"]["kind"] == "categorical"
    r = run("monitor", "drift", "--reference", "customers@v1", "--json")
    assert r.returncode == 2 and "--current" in r.stderr
    r = run("monitor", "profile", "customers", "--json")
    assert r.returncode == 2 and "names no version" in r.stderr


def test_cli_human_output(mon_ws: st.Workspace) -> None:
    from typer.testing import CliRunner

    from strataml.cli.main import app

    put(mon_ws, customers(4000, 7, shift=1.0))
    runner = CliRunner()
    r = runner.invoke(app, ["monitor", "drift", "--reference", "customers@v1", "--current", "customers@v2", "-w", str(mon_ws.root)])
    assert r.exit_code == 0, r.output
    assert "spend" in r.output and "DRIFT" in r.output and "drift detected" in r.output
    profile(mon_ws, "churn@1")  # churn is declared in code, not definitions.py: its reference is built here
    r = runner.invoke(app, ["monitor", "profile", "churn@1", "-w", str(mon_ws.root)])
    assert r.exit_code == 0, r.output
    assert "tenure" in r.output and "model:churn@v1" in r.output
    r = runner.invoke(app, ["monitor", "drift", "churn", "--since", "1h", "--window", "1h", "-w", str(mon_ws.root)])
    assert r.exit_code != 0 and "cannot be used together" in str(r.exception)
