"""Concurrent writers and hostile names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import strataml as st
from strataml import synth
from strataml.data import get_version, ingest, list_versions
from strataml.errors import SourceError, UnsafePath


def test_concurrent_ingests_into_one_dataset_lose_nothing(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    ws = st.Workspace.init(tmp_path / "ws")
    files = []
    for i in range(4):
        files.append(synth.write_csv(synth.transactions(3000, seed=i, start_id=i * 3000, bad_fraction=0.0), tmp_path / f"{i}.csv"))
    procs = [
        subprocess.Popen([python, "-m", "strataml", "ingest", str(f), "-c", "transactions", "-w", str(ws.root), "--json"],
                         env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for f in files
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    versions = list_versions(ws, "transactions")
    assert [v.number for v in versions] == [1, 2, 3, 4]
    latest = get_version(ws, "transactions@latest").to_pandas()
    assert len(latest) == 12000 and latest["tx_id"].is_unique
    assert ws.catalog.integrity_check() == []


@pytest.mark.parametrize("name", ["../evil", "a/b", "x" * 200, "..", "a b", "a\x00"])
def test_unsafe_dataset_names_are_refused(workspace: st.Workspace, name: str, tmp_path: Path) -> None:
    path = synth.write_csv(synth.transactions(5), tmp_path / "t.csv")
    with pytest.raises(UnsafePath):
        ingest(workspace, str(path), contract="transactions", dataset=name)


@pytest.mark.parametrize("ref", ["../../etc/passwd@v1", "x@v1/../../y", "/abs@latest", "x@@v1", "x@vv1"])
def test_unsafe_references_are_refused(workspace: st.Workspace, ref: str) -> None:
    with pytest.raises(UnsafePath):
        get_version(workspace, ref)


@pytest.mark.parametrize("uri", ["ftp://host/file.csv", "javascript:alert(1)://x", "gopher://x/y"])
def test_unknown_source_schemes_are_refused(workspace: st.Workspace, uri: str) -> None:
    with pytest.raises(SourceError, match="unsupported source scheme"):
        ingest(workspace, uri, contract="transactions")


def test_directory_source_is_refused(workspace: st.Workspace, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory"):
        ingest(workspace, str(tmp_path), contract="transactions")


@pytest.mark.postgres
def test_whole_data_layer_on_a_postgres_catalog(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    schema = "strata_test_data_layer"
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    monkeypatch.setenv("STRATA_CATALOG", postgres_url + f"?options=-csearch_path%3D{schema}")
    try:
        ws = st.Workspace.init(tmp_path / "ws")
        assert ws.catalog.dialect == "postgresql"
        a = synth.write_csv(synth.transactions(1000, seed=1, bad_fraction=0.01), tmp_path / "a.csv")
        b = synth.write_csv(synth.transactions(1000, seed=2, start_id=500, bad_fraction=0.01), tmp_path / "b.csv")
        r1 = ingest(ws, str(a), contract="transactions")
        r2 = ingest(ws, str(b), contract="transactions")
        assert (r1.version, r2.version) == ("v1", "v2") and r2.duplicates >= 450
        v2 = get_version(ws, "transactions@v2")
        assert v2.rows == r1.accepted + r2.accepted == len(v2.to_pandas())
        ws.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
