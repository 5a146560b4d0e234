"""Parquet output files that appear whole or not at all.

A file is written under a hidden temporary name beside its target and moved into
place only once complete: a failed or interrupted run leaves no partial output (and
never replaces an earlier good file with a broken one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class AtomicParquet:
    """A Parquet file written in pieces (``with AtomicParquet(out) as f: f.write(t)``)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.part")
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (the first one sets the schema)."""
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def __enter__(self) -> AtomicParquet:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
            if exc_type is None and self.writer is not None:
                os.replace(self.tmp, self.out)
        finally:
            self.tmp.unlink(missing_ok=True)


def write_parquet(table: pa.Table, out: str | Path) -> None:
    """Write ``table`` to ``out`` atomically."""
    with AtomicParquet(out) as f:
        f.write(table)
