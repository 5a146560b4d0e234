"""Batch scoring: bounded-memory streaming through the serving model code, row ids and version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from strataml.errors import ConfigError
from strataml.serving import score

from .conftest import FEATURES


def _input(tmp_path: Path, n: int = 5000) -> Path:
    rng = np.random.default_rng(5)
    cols = {f: rng.normal(size=n) for f in FEATURES}
    cols["tx_id"] = [f"t{i}" for i in range(n)]
    path = tmp_path / "in"
    path.mkdir()
    table = pa.table(cols)
    pq.write_table(table.slice(0, 3000), path / "a.parquet")
    pq.write_table(table.slice(3000), path / "b.parquet")
    return path


def test_scores_parquet_in_batches_with_row_ids(workspace, models, boosters, tmp_path: Path) -> None:
    src = _input(tmp_path)
    out = tmp_path / "scored.parquet"
    report = score(workspace, "fraud", str(src), out, batch_rows=700, id_column="tx_id", models=models)
    assert report["rows"] == 5000 and report["version"] == 1
    got = pq.read_table(out)
    assert got.column_names == ["row_id", "model", "version", "prediction"]
    table = pq.read_table(src)
    expected = boosters[0].predict(np.column_stack([table.column(f).to_numpy() for f in FEATURES]))
    assert got.column("row_id").to_pylist() == table.column("tx_id").to_pylist()
    assert np.allclose(got.column("prediction").to_numpy(), expected)
    assert set(got.column("version").to_pylist()) == {1} and set(got.column("model").to_pylist()) == {"fraud"}
    # the same answers as the gateway's online path
    s = models.get("fraud", "champion")
    assert np.allclose(s.predict(table.slice(0, 5).select(FEATURES).to_pylist()), expected[:5])


def test_default_row_ids_and_challenger(workspace, models, boosters, tmp_path: Path) -> None:
    src = _input(tmp_path, 1000)
    out = tmp_path / "o.parquet"
    report = score(workspace, "fraud", str(src / "a.parquet"), out, ref="challenger", models=models)
    got = pq.read_table(out)
    assert report["version"] == 2 and got.column("row_id").to_pylist() == list(range(1000))


def test_missing_columns_are_named(workspace, models, tmp_path: Path) -> None:
    pq.write_table(pa.table({"f0": [1.0]}), tmp_path / "x.parquet")
    with pytest.raises(ConfigError, match="f1"):
        score(workspace, "fraud", str(tmp_path / "x.parquet"), tmp_path / "o.parquet", models=models)
    assert not (tmp_path / "o.parquet").exists()


def test_a_failure_part_way_leaves_no_output(workspace, models, tmp_path: Path) -> None:
    # the first file's 20,000 rows are scored and written; the second file cannot be read as
    # the first one's schema
    src = _input(tmp_path, 21_000)
    table = pq.read_table(src)
    pq.write_table(table.slice(0, 20_000), src / "a.parquet")
    bad = table.slice(20_000).to_pydict()
    bad["f0"] = ["not a number"] * len(bad["f0"])
    pq.write_table(pa.table(bad), src / "b.parquet")
    out = tmp_path / "scored.parquet"
    with pytest.raises(Exception, match="not a number|f0"):
        score(workspace, "fraud", str(src), out, batch_rows=500, id_column="tx_id", models=models)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.ray
@pytest.mark.slow
def test_ray_engine_matches_local(workspace, models, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    src = _input(tmp_path, 2000)
    local = score(workspace, "fraud", str(src), tmp_path / "l.parquet", id_column="tx_id", models=models)
    remote = score(workspace, "fraud", str(src), tmp_path / "r.parquet", id_column="tx_id", engine="ray", models=models)
    assert local["rows"] == remote["rows"] == 2000
    a = pq.read_table(tmp_path / "l.parquet").sort_by("row_id")
    b = pq.read_table(tmp_path / "r.parquet").sort_by("row_id")
    assert a.column("row_id").to_pylist() == b.column("row_id").to_pylist()
    assert np.allclose(a.column("prediction").to_numpy(), b.column("prediction").to_numpy())


@pytest.mark.ray
@pytest.mark.slow
def test_ray_engine_scores_a_dataset_version(workspace, models, tmp_path: Path) -> None:
    # dataset versions live in the content-addressed artifact store: files without a .parquet name
    pytest.importorskip("ray")
    from strataml.data import Column, Contract, get_version, ingest

    contract = Contract("scoring", key="tx_id", columns=[Column("tx_id", "string"), *(Column(f, "float") for f in FEATURES)])
    workspace.definitions.add(contract)
    src = _input(tmp_path, 4000)
    for part in ("a", "b"):
        assert ingest(workspace, str(src / f"{part}.parquet"), contract="scoring").status == "created"
    assert len(get_version(workspace, "scoring").paths()) == 2
    local = score(workspace, "fraud", "scoring", tmp_path / "l.parquet", models=models)
    remote = score(workspace, "fraud", "scoring@latest", tmp_path / "r.parquet", engine="ray", models=models)
    assert local["rows"] == remote["rows"] == 4000
    a = pq.read_table(tmp_path / "l.parquet").sort_by("row_id")
    b = pq.read_table(tmp_path / "r.parquet").sort_by("row_id")
    assert a.column("row_id").to_pylist() == b.column("row_id").to_pylist() == sorted(f"t{i}" for i in range(4000))
    assert np.allclose(a.column("prediction").to_numpy(), b.column("prediction").to_numpy())


def test_an_old_version_is_scored_under_its_recorded_contract(workspace, models, tmp_path: Path) -> None:
    # the contract evolves after scoring@v1 was committed: a nullable column joins the key
    from strataml.data import Column, Contract, get_version, ingest

    columns = [Column("tx_id", "string"), *(Column(f, "float") for f in FEATURES)]
    workspace.definitions.add(Contract("scoring", key="tx_id", columns=columns))
    src = _input(tmp_path, 1000)
    assert ingest(workspace, str(src / "a.parquet"), contract="scoring").version == "v1"
    evolved = Contract("scoring", key=["tx_id", "region"], columns=[*columns, Column("region", "string")])
    workspace.definitions.add(evolved)
    v1 = get_version(workspace, "scoring@v1")
    assert v1.contract is not None and v1.contract.key_columns == ("tx_id",) and "region" not in v1.contract.column_names
    assert v1.contract.version != evolved.version
    report = score(workspace, "fraud", "scoring@v1", tmp_path / "o.parquet", models=models)
    got = pq.read_table(tmp_path / "o.parquet")
    # row ids come from v1's own key, not positions (the evolved key has two columns)
    assert report["rows"] == 1000
    assert sorted(got.column("row_id").to_pylist()) == sorted(f"t{i}" for i in range(1000))
