"""CSV sources: the dialect detected once per file (DuckDB's sniffer, or the header line),
a typed reader whose value errors are re-checked as text so that every rule a line
breaks is named, and the records counted by a second parser while the engine reads.
"""

from __future__ import annotations

import os

import duckdb

from strataml.data._records import Job, RecordCount, countable
from strataml.data._scan import (
    _MAX_LINE,
    _READER_BUFFER,
    CsvDialect,
    Scan,
    SourceSpec,
    _file_list,
    _first_line,
    check_header,
    check_width,
    long_lines,
)
from strataml.errors import SourceError
from strataml.spine import quote_literal


def _open_csv(
    con: duckdb.DuckDBPyConnection, files: list[str], spec: SourceSpec, types: dict[str, str]
) -> Scan:
    common = ["store_rejects=true", "rejects_table='_rej'", "rejects_scan='_rej_scan'"]
    # Longer lines become parse rejects. The reader's buffers grow with this limit, and a
    # buffer larger than the file leaves one thread to read it all: keep DuckDB's 2 MiB.
    common.append("max_line_size=" + str(int(spec.options.get("max_line_size", _MAX_LINE))))
    if spec.encoding:
        common.append(f"encoding={quote_literal(spec.encoding)}")
    skipped = [(f, *hit) for f in files for hit in long_lines(f, _READER_BUFFER - 1)]
    if len(files) > 1:
        # Files may order their columns differently: each is read with its own dialect and
        # matched by name (the reader's union_by_name cannot keep rejects), all as text.
        readers, columns, dialects = [], [], []
        for f in files:
            d = _checked_dialect(con, f, spec)
            dialects.append(d)
            readers.append(
                f"SELECT * FROM {_csv_reader([f], d, dict.fromkeys(d.columns, 'VARCHAR'), common)}"
            )
            columns += [c for c in d.columns if c not in columns]
        check_width(files[0], columns)
        con.execute("CREATE OR REPLACE TEMP VIEW _src AS " + " UNION ALL BY NAME ".join(readers))
        return Scan(
            columns=columns, text=True, files=files, csv=True, skipped=skipped, counting=_count(files, dialects, spec)
        )
    dialect = _checked_dialect(con, files[0], spec)
    # Numbers, booleans and dates are typed by the reader itself (its parser is faster
    # than casting text in SQL); a value it cannot type makes the line a CAST reject,
    # which the ingestion re-checks as text so that every rule it breaks is named.
    cols = {c: types.get(c, "VARCHAR") for c in dialect.columns}
    src = _csv_reader(files, dialect, cols, common)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _src AS SELECT * FROM {src}")
    return Scan(
        columns=dialect.columns,
        text=True,
        files=files,
        csv=True,
        dialect=dialect,
        common=common,
        skipped=skipped,
        counting=_count(files, [dialect] * len(files), spec),
    )


def _count(files: list[str], dialects: list[CsvDialect], spec: SourceSpec) -> RecordCount | None:
    """Count the files' records apart from the engine while it reads them (local files only)."""
    if not all(countable(f) for f in files):
        return None
    jobs: list[Job] = [
        (f, d.delim, d.quote, d.escape, len(d.columns), spec.encoding)
        for f, d in zip(files, dialects, strict=True)
    ]
    return RecordCount(jobs)


def _checked_dialect(con: duckdb.DuckDBPyConnection, path: str, spec: SourceSpec) -> CsvDialect:
    """The file's dialect, once its header is known to name each column once and not too many."""
    header = _read_header(path, spec)
    if header:
        check_width(path, header[1])  # before the sniffer, whose memory grows with the width
    dialect = _sniff(con, path, spec)
    # the sniffer renames a repeated name (amount → amount_1): the header as written
    header = _read_header(path, SourceSpec(path, delimiter=dialect.delim, encoding=spec.encoding))
    check_header(
        path, header[1] if header and len(header[1]) == len(dialect.columns) else dialect.columns
    )
    check_width(path, dialect.columns)
    return dialect


def _csv_reader(files: list[str], d: CsvDialect, cols: dict[str, str], common: list[str]) -> str:
    spec_cols = (
        "{" + ", ".join(f"{quote_literal(c)}: {quote_literal(t)}" for c, t in cols.items()) + "}"
    )
    opts = [
        *common,
        "auto_detect=false",
        "header=true",
        f"columns={spec_cols}",
        f"delim={quote_literal(d.delim)}",
        f"quote={quote_literal(d.quote)}",
        f"escape={quote_literal(d.escape)}",
    ]
    return f"read_csv({_file_list(files)}, {', '.join(opts)})"


def _sniff(con: duckdb.DuckDBPyConnection, path: str, spec: SourceSpec) -> CsvDialect:
    """Detect the dialect once (DuckDB's sniffer, or the header line when it fails)."""
    opts = []
    if spec.delimiter:
        opts.append(f"delim={quote_literal(spec.delimiter)}")
    if spec.encoding:
        opts.append(f"encoding={quote_literal(spec.encoding)}")
    extra = (", " + ", ".join(opts)) if opts else ""
    try:
        rows = con.execute(
            f"SELECT Delimiter, Quote, Escape, HasHeader, Columns FROM sniff_csv({quote_literal(path)}{extra})"
        ).fetchall()
        delim, quote, escape, _has_header, columns = rows[0]

        def none(v: str) -> str:
            return "" if v == "(empty)" else v

        return CsvDialect(delim, none(quote), none(escape), [c["name"] for c in columns])
    except duckdb.Error as exc:
        # Typically an oversized line in the sniffer's sample: read the header ourselves,
        # so that bad lines become rejects instead of failing the whole file.
        header = _read_header(path, spec)
        if header is None:
            raise SourceError(
                f"cannot read CSV {path}: {_first_line(exc)}",
                hint="check the file, or pass --delimiter/--encoding",
            ) from exc
        return CsvDialect(header[0], '"', '"', header[1])


def recheck_cast_rejects(con: duckdb.DuckDBPyConnection, scan: Scan, workdir: str) -> list[int]:
    """Expose the lines the typed reader refused over a value as ``_recheck`` (all text).

    Returns their line numbers, in the order of ``_recheck``'s rows (empty when none).
    """
    if scan.dialect is None:
        return []
    try:
        rows = con.execute(
            "SELECT line, any_value(csv_line) FROM _rej GROUP BY scan_id, file_id, line "
            "HAVING bool_and(error_type = 'CAST') ORDER BY line"
        ).fetchall()
    except duckdb.Error:
        return []
    if not rows:
        return []
    d = scan.dialect
    path = os.path.join(workdir, "recheck.csv")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(d.delim.join(_csv_quote(c, d) for c in d.columns) + "\n")
        for _, line in rows:
            fh.write(line.rstrip("\r\n") + "\n")
    common = [o for o in scan.common if not o.startswith(("rejects_", "encoding="))]
    common = [*common, "rejects_table='_rej_recheck'", "rejects_scan='_rej_recheck_scan'"]
    src = _csv_reader([path], d, dict.fromkeys(d.columns, "VARCHAR"), common)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _recheck AS SELECT * FROM {src}")
    return [int(r[0]) for r in rows]


def _csv_quote(value: str, d: CsvDialect) -> str:
    if d.quote and (d.delim in value or d.quote in value):
        return d.quote + value.replace(d.quote, (d.escape or d.quote) + d.quote) + d.quote
    return value


def _read_header(path: str, spec: SourceSpec) -> tuple[str, list[str]] | None:
    """The delimiter and column names from a CSV file's first line (None if unreadable)."""
    import csv
    import io

    if "://" in path:
        return None
    try:
        with open(path, "rb") as fh:
            line = fh.readline(1 << 20).decode(spec.encoding or "utf-8").lstrip("\ufeff")
    except (OSError, UnicodeError, LookupError):
        return None
    if not line.strip():
        return None
    delim = spec.delimiter or max(",;|\t", key=line.count)
    names = next(csv.reader(io.StringIO(line), delimiter=delim))
    return delim, [n.strip() for n in names]
