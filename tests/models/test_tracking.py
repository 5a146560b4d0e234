"""Runs: parameters, metrics with steps, artifacts, status, filters and comparison."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import strataml as st
from strataml.errors import ConfigError, NotFound
from strataml.models import compare_runs, get_run, list_runs, metric_history
from strataml.spine._events import list_events


def test_start_run_records_params_metrics_steps_and_artifacts(workspace: st.Workspace, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("hello")
    with st.start_run("exp", workspace=workspace, params={"lr": 0.1}) as run:
        run.log_param("depth", 6)
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("auc", 0.7)
        run.log_metric("auc", 0.8)
        sha = run.log_artifact(report)
        run.log_artifact(b"raw-bytes", name="blob.bin")
    d = get_run(workspace, run.id)
    assert d["status"] == "finished"
    assert d["params"] == {"lr": 0.1, "depth": 6}
    assert d["metrics"] == {"loss": pytest.approx(0.2), "auc": 0.8}
    assert d["history"]["loss"] == [[i, pytest.approx(1.0 / (i + 1))] for i in range(5)]
    assert metric_history(workspace, run.id, "auc") == [(0, 0.7), (1, 0.8)]
    assert {a["name"]: a["sha256"] for a in d["artifacts"]}["report.txt"] == sha
    assert workspace.artifacts.read_bytes(sha) == b"hello"
    assert "total_s" in d["timings"]
    started = dt.datetime.fromisoformat(d["started_at"])
    assert started.tzinfo is not None and abs(started - run.started_at) < dt.timedelta(seconds=1)
    kinds = [e.kind for e in list_events(workspace.catalog, subject=f"run:{run.id}")]
    assert kinds == ["run.started", "run.finished"]


def test_failed_block_marks_run_failed_with_error(workspace: st.Workspace) -> None:
    with pytest.raises(RuntimeError), st.start_run("exp", workspace=workspace) as run:
        run.log_metric("loss", 3.0)
        raise RuntimeError("diverged")
    d = get_run(workspace, run.id)
    assert d["status"] == "failed"
    assert "diverged" in d["error"]
    assert d["metrics"] == {"loss": 3.0}  # buffered points are written even on failure


def test_params_are_immutable(workspace: st.Workspace) -> None:
    with st.start_run("exp", workspace=workspace, params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)  # same value: fine
        with pytest.raises(ConfigError, match="already logged"):
            run.log_param("lr", 0.2)


def test_list_filters_by_metric_and_param_and_sorts(workspace: st.Workspace) -> None:
    ids = {}
    for i, auc in enumerate([0.61, 0.75, 0.82, 0.9]):
        with st.start_run("exp", workspace=workspace, params={"depth": i % 2, "kind": "gbm"}) as run:
            run.log_metric("auc", auc)
        ids[auc] = run.id
    with st.start_run("other", workspace=workspace) as other:
        other.log_metric("auc", 0.99)
    good = list_runs(workspace, name="exp", metric_filters=["auc>=0.75"])
    assert {r["id"] for r in good} == {ids[0.75], ids[0.82], ids[0.9]}
    assert [r["id"] for r in list_runs(workspace, metric_filters=["auc>0.8", "auc<0.95"], param_filters=["depth=0"])] == [ids[0.82]]
    assert {r["id"] for r in list_runs(workspace, param_filters=["depth!=0"])} == {ids[0.75], ids[0.9]}
    ordered = list_runs(workspace, name="exp", order_by="auc")
    assert [r["metrics"]["auc"] for r in ordered] == [0.9, 0.82, 0.75, 0.61]
    assert len(list_runs(workspace, limit=2)) == 2
    with pytest.raises(ConfigError):
        list_runs(workspace, metric_filters=["auc>>1"])


def test_compare_and_prefix_lookup(workspace: st.Workspace) -> None:
    with st.start_run("exp", workspace=workspace, params={"lr": 0.1, "depth": 3}) as a:
        a.log_metric("auc", 0.8)
    with st.start_run("exp", workspace=workspace, params={"lr": 0.2, "depth": 3}) as b:
        b.log_metric("auc", 0.85)
    c = compare_runs(workspace, [a.id[:10], b.id])
    assert c["params"]["lr"] == [0.1, 0.2]
    assert c["metrics"]["auc"] == [0.8, 0.85]
    assert c["differs"] == ["metric:auc", "param:lr"]
    with pytest.raises(NotFound):
        get_run(workspace, "abcdef0123")


def test_many_metric_points_are_written_in_bulk(workspace: st.Workspace) -> None:
    with st.start_run("loop", workspace=workspace) as run:
        for i in range(12_000):
            run.log_metric("loss", 1.0 / (i + 1))
    hist = metric_history(workspace, run.id, "loss")
    assert len(hist) == 12_000
    assert hist[-1] == (11_999, pytest.approx(1 / 12_000))


def test_odd_keys_infinities_and_nan(workspace: st.Workspace) -> None:
    with st.start_run("odd", workspace=workspace) as run:
        run.log_metric("a\tb\\c\nd", 1.5)
        run.log_metric("edge", float("inf"))
        run.log_metric("edge", float("-inf"))
        run.log_metric("edge", float("nan"))  # not stored, but it takes its step
        run.log_metric("edge", 2.0)
    assert metric_history(workspace, run.id, "a\tb\\c\nd") == [(0, 1.5)]
    assert metric_history(workspace, run.id, "edge") == [(0, float("inf")), (1, float("-inf")), (3, 2.0)]
    assert get_run(workspace, run.id)["metrics"]["edge"] == 2.0
