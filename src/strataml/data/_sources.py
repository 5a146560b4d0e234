"""Ingestion sources: files (CSV, JSON Lines, Parquet; path, glob or fsspec URL), SQL
queries, and HTTP JSON endpoints.

A source registers a DuckDB view ``_src`` over its rows, and a view ``_src_rejects``
(``line``, ``raw``, ``error``) over lines it could not even split into fields, so that
nothing read is ever lost. Text sources expose every column as VARCHAR: typing is the
validator's job, so a value that does not parse is quarantined, never a crash.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson

from strataml.data._csv import _open_csv
from strataml.data._csv import recheck_cast_rejects as recheck_cast_rejects
from strataml.data._scan import (
    _JSON_LINE_MAX,
    _MAX_LINE,
    Scan,
    _file_list,
    _first_line,
    check_header,
    check_width,
    long_lines,
)
from strataml.data._scan import MAX_COLUMNS as MAX_COLUMNS
from strataml.data._scan import SourceSpec as SourceSpec
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
