"""Ingestion sources: files (CSV, JSON Lines, Parquet; path, glob or fsspec URL), SQL
queries, and HTTP JSON endpoints.

A source registers a DuckDB view ``_src`` over its rows, and a view ``_src_rejects``
(``line``, ``raw``, ``error``) over lines it could not even split into fields, so that
nothing read is ever lost. Text sources expose every column as VARCHAR: typing is the
validator's job, so a value that does not parse is quarantined, never a crash.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
from pyarrow.lib import ArrowException

from strataml.data.records import count_later, countable
from strataml.errors import MissingExtra, SourceError, UnsafePath
from strataml.spine import owner_tag, quote_ident, quote_literal

_FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: DuckDB's CSV reader skips, without a reject or an error, a line longer than its read
#: buffer (32 MiB): such lines are found by :func:`long_lines` and quarantined here.
_READER_BUFFER = 32 * 1024 * 1024
#: a longer line is quarantined as a parse error, whatever the format (DuckDB's default)
_MAX_LINE = 2 * 1024 * 1024
#: the longest JSON Lines line read (longer ones make the reader fail: refused up front)
_JSON_LINE_MAX = 64 * 1024 * 1024
#: a source with more columns than this is refused before the engine runs out of memory
MAX_COLUMNS = 2000
_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "duckdb")
_REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory")


@dataclass
class SourceSpec:
    """Where to read from and how.

    ``format`` overrides detection by extension; ``delimiter`` and ``encoding`` apply to
    CSV; ``query`` is required for a database URL.
    """

    uri: str
    format: str | None = None
    query: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``file``, ``sql`` or ``http``."""
        scheme = self.uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in self.uri else "file"
        if scheme in ("http", "https"):
            return "http"
        if scheme in _SQL_SCHEMES:
            return "sql"
        if scheme in ("file", *_REMOTE_SCHEMES):
            return "file"
        raise SourceError(
            f"unsupported source scheme {scheme!r} in {self.display}",
            hint="use a file path or glob, an fsspec URL (s3://…), a database URL with --query, or an http(s):// URL",
        )

    @property
    def display(self) -> str:
        """The URI with any password hidden (for reports, lineage and logs)."""
        if "://" in self.uri and "@" in self.uri.split("://", 1)[1].split("/", 1)[0]:
            scheme, rest = self.uri.split("://", 1)
            creds, host = rest.split("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}" if ":" in creds else self.uri
        return self.uri


@dataclass
class Scan:
    """What a source registered: its columns and whether they are raw text."""

    columns: list[str]
    text: bool
    files: list[str]
    cleanup: list[str] = field(default_factory=list)
    csv: bool = False
    dialect: CsvDialect | None = None
    common: list[str] = field(default_factory=list)
    #: lines the reader skips unreported: (file, line number, length in bytes, first bytes)
    skipped: list[tuple[str, int, int, str]] = field(default_factory=list)
    #: the number of records in the source, counted without the reader (None when unknown)
    expected: int | None = None
    #: for a streamed source: how many records it yielded so far
    streamed: Callable[[], int] | None = None
    #: for local CSV files: their records, being counted by another parser meanwhile
    counting: Future[int] | None = None

    def source_rows(self) -> int | None:
        """The records in the source as counted apart from the engine (None when unknown)."""
        if self.counting is not None:
            try:
                return self.counting.result()
            except ArrowException:
                return None  # a record too long for the counter's block: long_lines covers it
        return self.streamed() if self.streamed is not None else self.expected

    def finish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Call once ``_src`` has been scanned: CSV rejects are known only then."""
        if self.csv:
            _finish_csv_rejects(con, self.skipped)

    def close(self) -> None:
        """Remove temporary files the source created."""
        for path in self.cleanup:
            with contextlib.suppress(OSError):
                os.unlink(path)


def open_source(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    *,
    retries: int = 5,
    timeout: float = 30.0,
    types: dict[str, str] | None = None,
) -> Scan:
    """Register ``_src`` and ``_src_rejects`` on ``con`` for the source.

    ``types`` maps column names to DuckDB types a CSV reader may parse directly.
    """
    kind = spec.kind
    if kind == "sql":
        return _open_sql(con, spec)
    if kind == "http":
        path, records = _download_http(spec.uri, retries=retries, timeout=timeout)
        try:
            scan = _open_files(con, [path], "jsonl", spec, {})
        except Exception:
            os.unlink(path)
            raise
        scan.cleanup.append(path)
        scan.expected = records
        return scan
    files = _expand_files(con, spec.uri)
    fmt = spec.format or _detect_format(files[0])
    return _open_files(con, files, fmt, spec, types or {})


# --- files -------------------------------------------------------------------------


def _expand_files(con: duckdb.DuckDBPyConnection, uri: str) -> list[str]:
    if "\x00" in uri:
        raise UnsafePath("source path contains a NUL byte")
    if "://" in uri and not uri.startswith("file://"):
        import fsspec

        scheme = uri.split("://", 1)[0]
        try:
            fs, _ = fsspec.core.url_to_fs(uri, **_remote_options(scheme))
        except ImportError as exc:
            raise MissingExtra("s3fs" if scheme.startswith("s3") else scheme, "s3", f"reading {scheme}:// sources") from exc
        matches = sorted(fs.glob(uri.split("://", 1)[1])) if any(ch in uri for ch in "*?[") else [uri.split("://", 1)[1]]
        if not matches or not all(fs.isfile(m) for m in matches):
            raise SourceError(f"no file matches {uri}", hint="check the URL and your credentials")
        con.register_filesystem(fs)
        return [f"{scheme}://{m}" for m in matches]
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    local = os.path.expanduser(local)
    matches = sorted(glob.glob(local, recursive=True)) if any(ch in local for ch in "*?[") else [local]
    matches = [m for m in matches if os.path.isfile(m)] if len(matches) > 1 else matches
    if not matches:
        raise SourceError(f"no file matches {uri!r}", hint="check the path or glob pattern")
    for m in matches:
        if os.path.isdir(m):
            raise SourceError(f"{m} is a directory", hint="pass a file or a glob such as 'dir/*.csv'")
        if not os.path.exists(m):
            raise SourceError(f"file not found: {m}", hint="check the path")
    empty = [m for m in matches if os.path.getsize(m) == 0]
    if empty:
        raise SourceError(f"{empty[0]} is empty (0 bytes)", hint="nothing to ingest; check that the export finished")
    return [str(Path(m).resolve()) for m in matches]


def _remote_options(scheme: str) -> dict[str, Any]:
    if scheme.startswith("s3") and os.environ.get("STRATA_S3_ENDPOINT"):
        return {"endpoint_url": os.environ["STRATA_S3_ENDPOINT"]}
    return {}


def _detect_format(path: str) -> str:
    name = path.lower()
    for comp in (".gz", ".zst", ".bz2"):
        name = name.removesuffix(comp)
    ext = os.path.splitext(name)[1]
    if ext not in _FILE_FORMATS:
        raise SourceError(
            f"cannot tell the format of {path} from its extension {ext!r}",
            hint="pass --format csv|jsonl|parquet",
        )
    return _FILE_FORMATS[ext]


def _file_list(files: list[str]) -> str:
    return "[" + ", ".join(quote_literal(f) for f in files) + "]"


def _open_files(con: duckdb.DuckDBPyConnection, files: list[str], fmt: str, spec: SourceSpec, types: dict[str, str]) -> Scan:
    if fmt == "csv":
        return _open_csv(con, files, spec, types)
    if fmt == "jsonl":
        return _open_jsonl(con, files, int(spec.options.get("max_line_size", _MAX_LINE)))
    if fmt == "parquet":
        try:
            rel = con.sql(f"SELECT * FROM read_parquet({_file_list(files)}, union_by_name=true)")
            con.execute(f"CREATE OR REPLACE TEMP VIEW _src AS SELECT * FROM read_parquet({_file_list(files)}, union_by_name=true)")
        except duckdb.Error as exc:
            raise SourceError(f"cannot read Parquet {files[0]}: {exc}", hint="check that the file is a complete Parquet file") from exc
        con.execute("CREATE OR REPLACE TEMP VIEW _src_rejects AS SELECT NULL::BIGINT AS line, NULL::VARCHAR AS raw, NULL::VARCHAR AS error WHERE false")
        expected = None
        if not any("://" in f for f in files):
            import pyarrow.parquet as pq

            expected = sum(pq.read_metadata(f).num_rows for f in files)
            for f in files:
                check_header(f, pq.read_schema(f).names)
        check_width(files[0], list(rel.columns))
        return Scan(columns=list(rel.columns), text=False, files=files, expected=expected)
    raise SourceError(f"unknown format {fmt!r}", hint="use csv, jsonl or parquet")


def _open_csv(con: duckdb.DuckDBPyConnection, files: list[str], spec: SourceSpec, types: dict[str, str]) -> Scan:
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
            readers.append(f"SELECT * FROM {_csv_reader([f], d, dict.fromkeys(d.columns, 'VARCHAR'), common)}")
            columns += [c for c in d.columns if c not in columns]
        check_width(files[0], columns)
        con.execute("CREATE OR REPLACE TEMP VIEW _src AS " + " UNION ALL BY NAME ".join(readers))
        counting = _count(files, dialects, spec)
        return Scan(columns=columns, text=True, files=files, csv=True, skipped=skipped, counting=counting)
    dialect = _checked_dialect(con, files[0], spec)
    # Numbers, booleans and dates are typed by the reader itself (its parser is faster
    # than casting text in SQL); a value it cannot type makes the line a CAST reject,
    # which the ingestion re-checks as text so that every rule it breaks is named.
    cols = {c: types.get(c, "VARCHAR") for c in dialect.columns}
    src = _csv_reader(files, dialect, cols, common)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _src AS SELECT * FROM {src}")
    return Scan(
        columns=dialect.columns, text=True, files=files, csv=True, dialect=dialect, common=common, skipped=skipped,
        counting=_count(files, [dialect] * len(files), spec),
    )


def _count(files: list[str], dialects: list[CsvDialect], spec: SourceSpec) -> Future[int] | None:
    """Count the files' records with another parser, while the engine reads them (local files only)."""
    if not all(countable(f) for f in files):
        return None
    return count_later([(f, d.delim, d.quote, d.escape, len(d.columns), spec.encoding) for f, d in zip(files, dialects, strict=True)])


def _checked_dialect(con: duckdb.DuckDBPyConnection, path: str, spec: SourceSpec) -> CsvDialect:
    """The file's dialect, once its header is known to name each column once and not too many."""
    header = _read_header(path, spec)
    if header:
        check_width(path, header[1])  # before the sniffer, whose memory grows with the width
    dialect = _sniff(con, path, spec)
    # the sniffer renames a repeated name (amount → amount_1): the header as written
    header = _read_header(path, SourceSpec(path, delimiter=dialect.delim, encoding=spec.encoding))
    check_header(path, header[1] if header and len(header[1]) == len(dialect.columns) else dialect.columns)
    check_width(path, dialect.columns)
    return dialect


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: separators and the header's column names."""

    delim: str
    quote: str
    escape: str
    columns: list[str]


def _csv_reader(files: list[str], d: CsvDialect, cols: dict[str, str], common: list[str]) -> str:
    spec_cols = "{" + ", ".join(f"{quote_literal(c)}: {quote_literal(t)}" for c, t in cols.items()) + "}"
    opts = [
        *common, "auto_detect=false", "header=true", f"columns={spec_cols}",
        f"delim={quote_literal(d.delim)}", f"quote={quote_literal(d.quote)}", f"escape={quote_literal(d.escape)}",
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
            raise SourceError(f"cannot read CSV {path}: {_first_line(exc)}", hint="check the file, or pass --delimiter/--encoding") from exc
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


def _finish_csv_rejects(con: duckdb.DuckDBPyConnection, skipped: list[tuple[str, int, int, str]]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE _skipped (file VARCHAR, line BIGINT, raw VARCHAR, error VARCHAR)")
    if skipped:
        con.executemany(
            "INSERT INTO _skipped VALUES (?, ?, ?, ?)",
            [
                [f, n, head + "…", f"LINE SIZE OVER MAXIMUM: the line is {size:,} bytes, longer than the reader's {_READER_BUFFER:,}"]
                for f, n, size, head in skipped
            ],
        )
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _rej_lines AS SELECT s.file_path AS file, r.line, r.error_type, r.csv_line, r.error_message "
            "FROM _rej r JOIN _rej_scan s USING (scan_id, file_id)"
        )
        reader = (
            "SELECT min(line)::BIGINT AS line, any_value(csv_line) AS raw, "
            "string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS error FROM _rej_lines GROUP BY file, line "
            "HAVING NOT bool_and(error_type = 'CAST')"
        )
        # a line the reader did report is not counted twice
        unreported = "WHERE NOT EXISTS (SELECT 1 FROM _rej_lines r WHERE r.file = k.file AND r.line = k.line)"
    except duckdb.Error:
        reader = "SELECT NULL::BIGINT AS line, NULL::VARCHAR AS raw, NULL::VARCHAR AS error WHERE false"
        unreported = ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW _src_rejects AS {reader} UNION ALL SELECT line, raw, error FROM _skipped k {unreported}")


def long_lines(path: str, limit: int) -> list[tuple[int, int, str]]:
    """The physical lines of a local file longer than ``limit`` bytes: (line number, length, first characters).

    Counted without the engine's reader (which may skip such a line unreported). A window
    of ``limit`` bytes after each newline is searched backwards for the next one, so only
    a few pages per window are read: the scan costs little even for large files.
    """
    import mmap

    if "://" in path or path.endswith((".gz", ".zst", ".bz2")) or os.path.getsize(path) <= limit:
        return []
    hits: list[tuple[int, int, str]] = []
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        size = len(mm)
        start = 0  # where the current line starts
        counted, newlines = 0, 0  # newlines before `counted`
        while size - start > limit:
            end = mm.rfind(b"\n", start, start + limit + 1)
            if end != -1:
                start = end + 1
                continue
            end = mm.find(b"\n", start + limit + 1)
            end = size if end == -1 else end
            for at in range(counted, start, 1 << 24):
                newlines += mm[at : min(start, at + (1 << 24))].count(b"\n")
            counted = start
            length = end - start - (1 if end > start and mm[end - 1 : end] == b"\r" else 0)
            hits.append((newlines + 1, length, mm[start : start + 200].decode("utf-8", "replace")))
            start = end + 1
    return hits


def check_header(path: str, columns: list[str]) -> None:
    """Refuse a header that names a column twice (a reader would rename or drop one)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(columns, 1):
        if name in seen:
            raise SourceError(
                f"{path} names column {name!r} twice (columns {seen[name]} and {i} of its header)",
                hint="rename one of them in the file; no column is ever dropped unannounced",
            )
        seen[name] = i


def check_width(path: str, columns: list[str]) -> None:
    """Refuse a source wider than :data:`MAX_COLUMNS` before its rows are read."""
    if len(columns) > MAX_COLUMNS:
        raise SourceError(
            f"{path} has {len(columns):,} columns; at most {MAX_COLUMNS:,} are supported",
            hint="select the columns the contract needs into a narrower file (or a Parquet file) and ingest that",
        )


#: a line that is one JSON object naming each key once (a repeated key would hide a value)
_GOOD_JSON = (
    "(CASE WHEN NOT coalesce(json_valid(line), false) THEN false WHEN json_type(line) <> 'OBJECT' THEN false "
    "ELSE len(json_keys(line)) = len(list_distinct(json_keys(line))) END)"
)


def _open_jsonl(con: duckdb.DuckDBPyConnection, files: list[str], max_line: int) -> Scan:
    for f in files:
        for line, size, _ in long_lines(f, _JSON_LINE_MAX):
            raise SourceError(
                f"{f} line {line} is {size:,} bytes, longer than the {_JSON_LINE_MAX:,} a JSON Lines line may have; nothing was read",
                hint="split that record, or deliver the data as Parquet",
            )
    # Lines are read whole (0x1e never occurs in JSON text) so that one malformed line
    # is quarantined on its own instead of failing the file.
    lines = (
        f"SELECT line, row_number() OVER () AS _line FROM read_csv({_file_list(files)}, columns={{'line': 'VARCHAR'}}, "
        "header=false, delim=chr(30), quote='', escape='', max_line_size=67108864, strict_mode=false)"
    )
    # each line is judged once (parsing a long line again in later queries costs memory)
    # A line longer than max_line is set aside unparsed, as the CSV reader does: a value
    # that long would cost the validating query far more memory than it has.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _lines AS SELECT *, strlen(line) > {int(max_line)} AS _long, "
        f"CASE WHEN strlen(line) > {int(max_line)} THEN false ELSE {_GOOD_JSON} END AS _ok "
        f"FROM ({lines}) WHERE trim(line) <> ''"
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW _src_rejects AS SELECT _line AS line, CASE WHEN _long THEN left(line, 200) || '…' ELSE line END AS raw, "
        f"CASE WHEN _long THEN 'LINE SIZE OVER MAXIMUM: the line is ' || format('{{:,}}', strlen(line)) || ' bytes, longer than {int(max_line):,}' "
        "WHEN NOT coalesce(json_valid(line), false) THEN 'malformed JSON: not one JSON object per line' "
        "WHEN json_type(line) <> 'OBJECT' THEN 'malformed JSON: not one JSON object per line' "
        "ELSE 'malformed JSON: the object names a key twice' END AS error "
        "FROM _lines WHERE NOT _ok"
    )
    keys = [r[0] for r in con.sql(
        "SELECT k FROM (SELECT unnest(json_keys(line)) AS k, min(_line) AS first FROM _lines "
        "WHERE _ok GROUP BY k) ORDER BY first"
    ).fetchall()]
    if not keys:
        raise SourceError(f"{files[0]} holds no JSON objects", hint="expect one JSON object per line (JSON Lines)")
    cols = ", ".join(f"line ->> {quote_literal('$.' + _json_path_key(k))} AS {quote_ident(k)}" for k in keys)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _src AS SELECT {cols} FROM _lines WHERE _ok ORDER BY _line"
    )
    return Scan(columns=keys, text=True, files=files)


def _json_path_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


# --- SQL ---------------------------------------------------------------------------


def _open_sql(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> Scan:
    import pyarrow as pa
    import sqlalchemy as sa

    if not spec.query:
        raise SourceError(f"a database source needs a query: {spec.display}", hint='pass --query "SELECT …"')
    url = spec.uri
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        engine = sa.create_engine(url)
    except (ImportError, ModuleNotFoundError) as exc:
        raise MissingExtra(getattr(exc, "name", None) or "driver", "postgres", f"reading from {spec.display}") from exc
    except Exception as exc:
        raise SourceError(f"bad database URL {spec.display}: {exc}") from exc
    try:
        conn = engine.connect()
        result = conn.execution_options(stream_results=True, yield_per=50_000).execute(sa.text(spec.query))
        columns = list(result.keys())
    except Exception as exc:
        engine.dispose()
        raise SourceError(f"query on {spec.display} failed: {_first_line(exc)}", hint="check the query and the connection") from exc
    check_header(f"the query on {spec.display}", columns)
    schema = pa.schema([(c, pa.string()) for c in columns])

    yielded = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for part in result.partitions(50_000):
                yielded[0] += len(part)
                cols = list(zip(*part, strict=True)) if part else [() for _ in columns]
                yield pa.RecordBatch.from_arrays(
                    [pa.array([_text(v) for v in col], pa.string()) for col in cols], schema=schema
                )
        finally:
            conn.close()
            engine.dispose()

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    con.register("_src_arrow", reader)
    con.execute("CREATE OR REPLACE TEMP VIEW _src AS SELECT * FROM _src_arrow")
    con.execute("CREATE OR REPLACE TEMP VIEW _src_rejects AS SELECT NULL::BIGINT AS line, NULL::VARCHAR AS raw, NULL::VARCHAR AS error WHERE false")
    return Scan(columns=columns, text=True, files=[spec.display], streamed=lambda: yielded[0])


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


# --- HTTP --------------------------------------------------------------------------


def _download_http(url: str, *, retries: int, timeout: float) -> tuple[str, int | None]:
    """Fetch a JSON (array, ``{"data": [...]}``) or JSON Lines endpoint into a JSON Lines file."""
    import httpx
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, httpx.HTTPStatusError):
            return exc.response.status_code in (408, 425, 429) or exc.response.status_code >= 500
        return isinstance(exc, httpx.TransportError)

    fd, path = tempfile.mkstemp(prefix="strata-http-" + owner_tag(), suffix=".jsonl")
    os.close(fd)
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(max(1, retries)),
            wait=wait_random_exponential(multiplier=0.2, max=10),
            retry=retry_if_exception(transient),
            reraise=True,
        ):
            with attempt, httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
                resp.raise_for_status()
                with open(path, "wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
        records = _normalise_json(path)
    except httpx.HTTPStatusError as exc:
        os.unlink(path)
        raise SourceError(f"GET {url} answered {exc.response.status_code}", hint="check the URL and that the service is up") from exc
    except httpx.HTTPError as exc:
        os.unlink(path)
        raise SourceError(f"GET {url} failed after {retries} attempts: {exc}", hint="check the URL and the network") from exc
    except Exception:
        os.unlink(path)
        raise
    return path, records


def _normalise_json(path: str) -> int | None:
    """Turn a JSON document holding a list of records into JSON Lines, in place; how many records it holds (None for JSON Lines)."""
    with open(path, "rb") as fh:
        head = fh.read(1024).lstrip()
    if not head:
        raise SourceError("the endpoint returned an empty body")
    if head[:1] not in (b"[", b"{"):
        raise SourceError("the endpoint did not return JSON", hint="expect a JSON array of objects or JSON Lines")
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
    except orjson.JSONDecodeError:
        return None  # JSON Lines (several documents): read line by line as it is
    records = doc
    if isinstance(doc, dict):
        records = next((doc[k] for k in ("data", "items", "records", "results", "rows") if isinstance(doc.get(k), list)), [doc])
    if not isinstance(records, list):
        raise SourceError("the endpoint's JSON holds no list of records")
    with open(path, "wb") as out:
        for rec in records:
            out.write(orjson.dumps(rec))
            out.write(b"\n")
    return len(records)
