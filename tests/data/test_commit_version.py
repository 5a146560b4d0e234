"""commit_version: concurrent commits of one dataset get distinct numbers and none is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import strataml as st
from strataml import synth
from strataml.data import commit_version, get_version, ingest, list_versions
from strataml.errors import ConcurrencyError, StrataError

COLUMNS = [{"name": "x", "type": "BIGINT"}]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ws(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[st.Workspace]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        schema = "strata_test_commit_version"
        admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        monkeypatch.setenv("STRATA_CATALOG", url + f"?options=-csearch_path%3D{schema}")
    w = st.Workspace.init(tmp_path / "ws")
    yield w
    w.close()


def _file(ws: st.Workspace, tmp: Path, value: int) -> dict[str, Any]:
    path = tmp / f"{value}.parquet"
    pq.write_table(pa.table({"x": pa.array([value], pa.int64())}), path)
    return {"sha256": ws.artifacts.put_file(path, move=True), "rows": 1}


def _race(fns: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(fns)
    start = threading.Barrier(len(fns))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = fns[i]()
        except BaseException as exc:  # reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_commits_get_distinct_numbers_and_none_is_lost(ws: st.Workspace, tmp_path: Path) -> None:
    files = [_file(ws, tmp_path, i) for i in range(6)]
    results = _race([
        (lambda f=f, i=i: commit_version(ws, "built", [f], kind="training_set", columns=COLUMNS, lineage={"writer": i}))
        for i, f in enumerate(files)
    ])
    assert all(isinstance(r, st.DatasetVersion) for r in results), results
    assert sorted(r.number for r in results) == [1, 2, 3, 4, 5, 6]
    versions = list_versions(ws, "built")
    assert sorted(v.lineage["writer"] for v in versions) == list(range(6))
    for v in versions:  # each version holds its own writer's rows
        assert v.to_pandas()["x"].tolist() == [v.lineage["writer"]]
        assert v.parent == (v.number - 1 or None)


def test_a_commit_on_a_stale_parent_is_refused_and_writes_nothing(ws: st.Workspace, tmp_path: Path) -> None:
    first = commit_version(ws, "d", [_file(ws, tmp_path, 1)], kind="ingest", columns=COLUMNS, lineage={}, parent=None)
    commit_version(ws, "d", [_file(ws, tmp_path, 2)], kind="ingest", columns=COLUMNS, lineage={}, parent=first.number)
    with pytest.raises(ConcurrencyError, match="changed"):
        commit_version(ws, "d", [_file(ws, tmp_path, 3)], kind="ingest", columns=COLUMNS, lineage={}, parent=first.number)
    assert [v.number for v in list_versions(ws, "d")] == [1, 2]
    with pytest.raises(StrataError, match="holds ingest versions"):
        commit_version(ws, "d", [_file(ws, tmp_path, 4)], kind="training_set", columns=COLUMNS, lineage={})


def test_a_training_set_commit_racing_an_ingest_loses_neither(ws: st.Workspace, tmp_path: Path) -> None:
    ingest(ws, str(synth.write_csv(synth.transactions(200, seed=1, bad_fraction=0.0), tmp_path / "a.csv")), contract="transactions")
    labels = get_version(ws, "transactions@v1")
    source = synth.write_csv(synth.transactions(300, seed=2, start_id=1000, bad_fraction=0.0), tmp_path / "b.csv")
    files = [_file(ws, tmp_path, i) for i in range(3)]
    results = _race([
        lambda: ingest(ws, str(source), contract="transactions"),
        *((lambda f=f, i=i: commit_version(ws, "tx_training", [f], kind="training_set", columns=COLUMNS,
                                             source=labels.ref, lineage={"labels": labels.ref, "writer": i}))
          for i, f in enumerate(files)),
    ])
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results[0].version == "v2" and get_version(ws, "transactions@v2").rows == 500
    assert sorted(v.number for v in list_versions(ws, "tx_training")) == [1, 2, 3]
    assert sorted(v.lineage["writer"] for v in list_versions(ws, "tx_training")) == [0, 1, 2]
