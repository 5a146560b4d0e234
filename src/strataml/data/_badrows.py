"""Rows that break a rule, set aside while the good ones stream straight to Parquet.

The validating query writes the good rows with one ``COPY``; a row that breaks a rule
goes instead through a SQL function (:data:`FUNCTION`) that hands its rule names and raw
texts to a :class:`BadRows`. The query calls it only for bad rows (a ``CASE`` branch),
so good rows never cross into Python. The collector counts rule names and nulls as rows
arrive and spills them to a Parquet file every few thousand rows, so memory stays
bounded however many rows are bad.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb import sqltypes
from duckdb.func import FunctionNullHandling, PythonUDFType

#: the SQL function the validating query calls for each bad row (returns false)
FUNCTION = "_strata_set_aside"
_FLUSH_ROWS = 8192


class BadRows:
    """Collects the bad rows of one validating pass (thread-safe).

    ``columns`` are the contract's columns (the order of each row's raw texts);
    ``null_checked`` those whose nulls a table check counts.
    """

    def __init__(self, path: Path, columns: list[str], null_checked: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.count = 0
        self.by_rule: Counter[str] = Counter()
        #: per null-checked column: bad rows where it is null without being a type error
        self.nulls = dict.fromkeys(null_checked, 0)
        self._null_index = [(c, columns.index(c), f"{c}.type") for c in null_checked]
        self._schema = pa.schema([("_errors", pa.string()), *((c, pa.string()) for c in columns)])
        self._rows: list[tuple[str, list[str | None]]] = []
        self._writer: pq.ParquetWriter | None = None
        self._lock = threading.Lock()

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make :data:`FUNCTION` ``(errors VARCHAR, raw VARCHAR[])`` call :meth:`add` on ``con``."""
        con.create_function(
            FUNCTION, self.add, [sqltypes.VARCHAR, duckdb.list_type(sqltypes.VARCHAR)], sqltypes.BOOLEAN,
            type=PythonUDFType.NATIVE, null_handling=FunctionNullHandling.SPECIAL, side_effects=True,
        )

    def add(self, errors: str, raw: list[str | None]) -> bool:
        """Keep one bad row; always false (the row is not written with the good ones)."""
        rules = errors.split(",")
        with self._lock:
            self.count += 1
            self.by_rule.update(rules)
            for name, i, type_rule in self._null_index:
                # the typed value is null exactly when the text is null or fails to type
                if raw[i] is None and type_rule not in rules:
                    self.nulls[name] += 1
            self._rows.append((errors, raw))
            if len(self._rows) >= _FLUSH_ROWS:
                self._flush()
        return False

    def _flush(self) -> None:
        if not self._rows:
            return
        arrays = [_strings([e for e, _ in self._rows])]
        arrays += [_strings([r[i] for _, r in self._rows]) for i in range(len(self.columns))]
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema)
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self._rows = []

    def close(self) -> bool:
        """Write what is left; whether the file holds any row."""
        with self._lock:
            self._flush()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self.count > 0


def _strings(values: list[str | None]) -> pa.Array:
    """A string array; built directly because ``pa.array`` imports pandas to probe its input."""
    builder = pa.lib.StringBuilder()
    builder.append_values(values)
    return builder.finish()
