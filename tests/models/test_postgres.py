"""The catalog-backed parts of the models layer against a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightgbm import LGBMClassifier

import strataml as st
from strataml.models import get_model, get_run, list_runs, load_model, rollback

from .conftest import ingest_loans


@pytest.fixture
def pg_workspace(postgres_url: str, tmp_path: Path) -> Iterator[st.Workspace]:
    """A workspace whose catalog is a fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"strata_models_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    st.Workspace.init(tmp_path / "ws").close()
    ws = st.Workspace.open(tmp_path / "ws", catalog=url)
    try:
        yield ws
    finally:
        ws.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_runs_training_registry_and_aliases_on_postgres(pg_workspace: st.Workspace, tmp_path: Path) -> None:
    ws = pg_workspace
    assert ws.catalog.dialect == "postgresql"
    ingest_loans(ws, tmp_path / "loans.parquet", n=2000)
    with st.start_run("exp", workspace=ws, params={"depth": 3}) as run:
        for i in range(2500):
            run.log_metric("loss", 1 / (i + 1))
        run.log_metric("auc", 0.8)
        run.log_metric("odd\tkey\\x", float("-inf"))
    hist = get_run(ws, run.id)["history"]
    assert len(hist["loss"]) == 2500 and hist["odd\tkey\\x"] == [[0, float("-inf")]]
    listed = list_runs(ws, metric_filters=["auc>0.7"], param_filters=["depth=3"])
    assert [r["id"] for r in listed] == [run.id]
    started = dt.datetime.fromisoformat(listed[0]["started_at"])
    assert started.tzinfo is not None and abs(started - run.started_at) < dt.timedelta(seconds=1)
    m = st.Model("pg", labels="loans", target="defaulted", columns=["amount", "age", "country"],
                 estimator=LGBMClassifier(n_estimators=10, n_jobs=1),
                 tune=st.Tune(params={"num_leaves": ("int", 4, 16)}, trials=2))
    a = st.train(ws, m)
    b = st.train(ws, m, tune=0, promote=True)
    assert (a.version, b.version) == (1, 2) and a.sha256 != b.sha256
    assert len(list_runs(ws, parent=a.run)) == 2
    assert load_model(ws, "pg").version == 2
    assert rollback(ws, "pg", reason="test")["to"] == 1
    d = get_model(ws, "pg")
    assert d["aliases"] == {"champion": 1} and [h["action"] for h in d["alias_history"]] == ["set", "set", "rollback"]


@pytest.mark.postgres
def test_concurrent_registrations_get_distinct_versions_on_postgres(pg_workspace: st.Workspace) -> None:
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    from strataml.models._registry import move_alias, register_version

    ws = pg_workspace
    sig = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "regression", "classes": []}}

    def register(i: int) -> int:
        with ws.catalog.write() as conn:
            v = register_version(conn, "race", run_id=None, sha256=hashlib.sha256(str(i).encode()).hexdigest(), fmt="lightgbm",
                                 signature=sig, metrics={}, params={}, lineage={}, feature_views=[], trusted_types=[])
            move_alias(conn, "race", "champion", v, reason=f"writer {i}")
            return v

    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(register, range(12)))
    assert sorted(versions) == list(range(1, 13))
    d = get_model(ws, "race")
    assert [v["version"] for v in d["versions"]] == list(range(1, 13))
    hist = d["alias_history"]
    # every move saw the one before it: the history is a chain
    assert [h["from"] for h in hist[1:]] == [h["to"] for h in hist[:-1]]


@pytest.mark.postgres
def test_onnx_export_recorded_on_postgres(pg_workspace: st.Workspace, tmp_path: Path) -> None:
    from strataml.models import export_model, list_exports

    ingest_loans(pg_workspace, tmp_path / "loans.parquet", n=600)
    m = st.Model("pg_onnx", labels="loans", target="defaulted", columns=["amount", "age"], estimator=LGBMClassifier(n_estimators=5, n_jobs=1))
    assert st.train(pg_workspace, m).version == 1
    out = export_model(pg_workspace, "pg_onnx")
    assert out["created"] and not export_model(pg_workspace, "pg_onnx")["created"]
    assert [e["sha256"] for e in list_exports(pg_workspace, "pg_onnx")] == [out["sha256"]]
    assert get_model(pg_workspace, "pg_onnx")["versions"][0]["exports"][0]["created_at"].endswith("+00:00")
    assert load_model(pg_workspace, "pg_onnx", runtime="onnx").sha256 == out["sha256"]
