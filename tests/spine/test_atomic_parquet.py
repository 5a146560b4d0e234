"""Parquet outputs (batch scores, training sets) appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from strataml.spine._atomic_parquet import AtomicParquet, write_parquet


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "scores.parquet"
    write_parquet(pa.table({"x": [1, 2, 3]}), out)
    assert pq.read_table(out).column("x").to_pylist() == [1, 2, 3]
    with pytest.raises(RuntimeError), AtomicParquet(out) as f:
        f.write(pa.table({"x": [7, 8]}))
        raise RuntimeError("the run failed part way")
    assert pq.read_table(out).column("x").to_pylist() == [1, 2, 3]  # the earlier output is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.parquet"]  # no partial file left


def test_pieces_are_appended_in_order(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    with AtomicParquet(out) as f:
        f.write(pa.table({"x": [1]}))
        assert not out.exists()  # nothing visible before the end
        f.write(pa.table({"x": [2, 3]}))
    assert f.rows == 3 and pq.read_table(out).column("x").to_pylist() == [1, 2, 3]
