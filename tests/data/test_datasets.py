"""Reading versioned datasets from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

import strataml as st
from strataml import synth
from strataml.data import diff, get_version, ingest, list_datasets, parse_ref
from strataml.errors import IntegrityError, NotFound


@pytest.fixture
def two_versions(workspace: st.Workspace, tmp_path: Path) -> st.Workspace:
    ingest(workspace, str(synth.write_csv(synth.transactions(300, seed=1, bad_fraction=0), tmp_path / "a.csv")), contract="transactions")
    ingest(workspace, str(synth.write_csv(synth.transactions(200, seed=2, start_id=300, bad_fraction=0), tmp_path / "b.csv")), contract="transactions")
    return workspace


def test_readers_agree(two_versions: st.Workspace) -> None:
    v = st.dataset("transactions@v2", two_versions)
    arrow = v.to_arrow()
    df = v.to_pandas()
    rel = v.to_duckdb()
    assert arrow.num_rows == len(df) == v.rows == 500
    assert rel.aggregate("count(*)").fetchall()[0][0] == 500
    assert arrow.column_names == v.columns == list(df.columns)


def test_refs(two_versions: st.Workspace) -> None:
    assert parse_ref("transactions") == ("transactions", None)
    assert parse_ref("transactions@v2") == parse_ref("transactions@2") == ("transactions", 2)
    assert get_version(two_versions, "transactions").number == 2
    assert get_version(two_versions, "transactions@1").rows == 300
    with pytest.raises(NotFound, match="has no version 'v7'; it has v1…v2"):
        get_version(two_versions, "transactions@v7")


def test_diff_and_list(two_versions: st.Workspace) -> None:
    d = diff(two_versions, "transactions@v1", "transactions@v2")
    assert (d["rows_added"], d["files_added"], d["rows_removed"]) == (200, 1, 0)
    assert list_datasets(two_versions.catalog) == [
        {"name": "transactions", "kind": "ingest", "latest": "v2", "rows": 500, "updated_at": list_datasets(two_versions.catalog)[0]["updated_at"]}
    ]


def test_reading_a_tampered_version_is_refused(two_versions: st.Workspace) -> None:
    import os

    v = get_version(two_versions, "transactions@v1")
    path = Path(two_versions.artifacts.uri(v.files[0]["sha256"]))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="modified or corrupted"):
        v.to_arrow()
