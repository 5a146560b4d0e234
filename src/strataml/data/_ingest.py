"""Ingestion: read a source, validate it against a contract, quarantine what breaks a
rule, drop duplicates by key, and commit an immutable dataset version.

The work happens in one DuckDB session that spills to disk, so memory stays bounded
whatever the input size. One validating pass writes the good rows straight to Parquet and
sets the bad ones aside (:mod:`strataml.data._badrows`); the rows are staged in a table for
the checks only when a key or unique value repeats (an append to a dataset stages them
from the start: its keys meet the dataset's). Files are written to the artifact store
first; the version becomes visible in a single catalog transaction at the end, so a crash
at any point leaves either the whole version or nothing.
``accepted + rejected + duplicates == rows_read`` always holds.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from strataml.data import _tables as tables
from strataml.data._badrows import FUNCTION as BAD_ROWS
from strataml.data._badrows import BadRows
from strataml.data._contract import Contract, breaking_changes
from strataml.data._datasets import (
    DatasetVersion,
    commit_version,
    latest_number,
    latest_version,
    register_contract,
)
from strataml.data._parts import digest_later, file_list, parts
from strataml.data._sources import SourceSpec, open_source, recheck_cast_rejects
from strataml.data._validate import build_plan
from strataml.errors import (
    ConcurrencyError,
    ContractError,
    SourceError,
    StrataError,
    ValidationFailed,
)
from strataml.spine import (
    Workspace,
    append_event,
    check_name,
    duck,
    failpoint,
    one,
    quote_ident,
    quote_literal,
    utcnow,
)

_TARGET_FILE_BYTES = "256MB"
#: a row's key as one 64-bit number (equal keys, equal numbers) to find repeats cheaply
_KEY_HASH = "hash({})"
#: up to this many hashes (8 bytes each) are sorted in memory to find repeats
_SORT_ROWS = 4_000_000
#: contract types a CSV reader parses itself (faster than casting text in SQL);
#: integers are not among them because the reader rounds "1.5" instead of refusing it
_READER_TYPES = {"float": "DOUBLE", "bool": "BOOLEAN", "date": "DATE"}


@dataclass
class IngestReport:
    """What one ingestion did (``strata ingest --json`` prints :meth:`to_dict`)."""

    dataset: str
    version: str | None
    rows_read: int
    accepted: int
    rejected: int
    duplicates: int
    rejected_by_rule: dict[str, int]
    quarantine: str | None
    ingest_id: str
    source: str
    contract: str
    contract_version: str
    status: str
    seconds: float
    table_checks: list[dict[str, Any]] = field(default_factory=list)
    #: source columns the contract does not declare, left out (``extra_columns="drop"``)
    dropped_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "dataset": self.dataset,
            "version": self.version,
            "status": self.status,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejected_by_rule": self.rejected_by_rule,
            "quarantine": self.quarantine,
            "ingest_id": self.ingest_id,
            "source": self.source,
            "contract": self.contract,
            "contract_version": self.contract_version,
            "table_checks": self.table_checks,
            "dropped_columns": self.dropped_columns,
            "seconds": round(self.seconds, 3),
        }


def resolve_contract(ws: Workspace, contract: str | Contract) -> Contract:
    """A contract object from a name declared in ``definitions.py`` or given directly."""
    if isinstance(contract, Contract):
        return contract
    return ws.definitions.get("contract", contract)  # type: ignore[no-any-return]


def ingest(
    ws: Workspace,
    source: str | SourceSpec,
    *,
    contract: str | Contract,
    dataset: str | None = None,
    allow_breaking: bool = False,
) -> IngestReport:
    """Ingest one source into a dataset; see the module docstring for guarantees.

    Raises :class:`ValidationFailed` when a table-level check fails (nothing is
    committed) and :class:`SourceError` when the source cannot be read.
    """
    c = resolve_contract(ws, contract)
    spec = source if isinstance(source, SourceSpec) else SourceSpec(uri=source)
    name = check_name(dataset or c.name, "dataset name")
    # Writers of one dataset take turns: deduplication must see every committed row.
    with ws.catalog.lock(f"dataset:{name}"):
        for attempt in range(3):
            try:
                return _Ingestion(ws, spec, c, name, allow_breaking).run()
            except ConcurrencyError:
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


class _Ingestion:
    def __init__(self, ws: Workspace, spec: SourceSpec, contract: Contract, dataset: str, allow_breaking: bool) -> None:
        self.ws = ws
        self.spec = spec
        self.contract = contract
        self.dataset = dataset
        self.allow_breaking = allow_breaking
        self.id = str(uuid.uuid4())
        self.started = time.perf_counter()
        self.dropped: list[str] = []

    # --- steps -----------------------------------------------------------------------

    def run(self) -> IngestReport:
        parent, reset = self._parent()
        known = parent if not reset else None
        stage = self.ws.artifacts.staging_dir()
        con = duck(self.ws.settings.memory_limit, self.ws.settings.threads, self.ws.scratch_dir())
        scan = None
        rated = [c.name for c in self.contract.columns if c.max_null_rate is not None]
        bad = BadRows(stage / "set_aside.parquet", self.contract.column_names, rated)
        try:
            reader_types = {c.name: _READER_TYPES[c.type] for c in self.contract.columns if c.type in _READER_TYPES}
            scan = open_source(
                con, self.spec, retries=self.ws.settings.http_retries, timeout=self.ws.settings.http_timeout, types=reader_types
            )
            plan = build_plan(con, self.contract, scan.columns)
            bad.register(con)
            # An append checks every key against the dataset, and re-delivered rows are common:
            # staging every row at once (as the checks would) beats writing them twice.
            appending = bool(known and known.files)
            try:
                first = [] if appending else self._first_pass(con, plan.select, stage / "pass")
                bad.close()
                if appending:
                    con.execute(f"CREATE TEMP TABLE _staged AS {plan.select}")
                else:
                    cols = ", ".join(f"{quote_ident(c.name)} {c.sql_type}" for c in self.contract.columns)
                    con.execute(f"CREATE TEMP TABLE _staged ({cols}, _errors VARCHAR, _raw VARCHAR[])")
                lines = recheck_cast_rejects(con, scan, str(stage))  # once the source has been read
                if lines:
                    con.execute(f"CREATE TEMP TABLE _rechecked AS {build_plan(con, self.contract, scan.columns, source='_recheck').select}")
                # Repeats, clashes with the dataset or rechecked good rows: the first pass's good
                # rows join _staged (in their order, ahead of the rechecked ones) for the checks.
                staged = (
                    appending
                    or bool(lines and one(con, "SELECT count(*) FROM _rechecked WHERE _errors IS NULL")[0])
                    or self._clashes(con, first, known)
                )
                if staged and not appending:
                    names = ", ".join(quote_ident(c) for c in self.contract.column_names)
                    con.execute(f"INSERT INTO _staged SELECT {names}, NULL, NULL FROM read_parquet({file_list(first)})")
                offset = one(con, "SELECT count(*) FROM _staged")[0]
                if not staged:
                    # the first pass's files are the snapshot: hash them on another core meanwhile
                    digests = digest_later(first)
                if lines:
                    con.execute("INSERT INTO _staged SELECT * FROM _rechecked")
                con.execute("CREATE TEMP TABLE _recheck_lines (_idx BIGINT, _line BIGINT)")
                if lines:
                    # one statement for all (executemany runs one INSERT per line)
                    con.execute(
                        "INSERT INTO _recheck_lines SELECT _o + i - 1, _l[i] FROM (SELECT ?::BIGINT AS _o, ?::BIGINT[] AS _l), "
                        "range(1, len(_l) + 1) AS t(i)",
                        [offset, lines],
                    )
            except duckdb.OutOfMemoryException as exc:
                raise SourceError(
                    f"reading {self.spec.display} ran out of memory (memory_limit {self.ws.settings.memory_limit}): {str(exc).splitlines()[0]}",
                    hint="raise memory_limit in strata.toml (or STRATA_MEMORY_LIMIT), or split the source into smaller files",
                ) from exc
            except duckdb.Error as exc:
                raise SourceError(f"cannot read {self.spec.display}: {str(exc).splitlines()[0]}", hint="check the file's format, delimiter and encoding") from exc
            scan.finish(con)
            failpoint("ingest.after_validate")
            self._check_unique(con, known)
            self._find_duplicates(con, known)
            counts = self._counts(con, bad, [] if staged else first)
            check_read_all(self.spec.display, self.dataset, scan.source_rows(counts["rows_read"]), counts["rows_read"])
            self.dropped = [c for c in scan.columns if c not in self.contract.column_names]
            table_checks = self._table_checks(counts)
            quarantine = self._write_quarantine(con, stage, bad) if counts["rejected"] + counts["duplicates"] else None
            failed = [t for t in table_checks if not t["passed"]]
            if failed:
                report = self._report(None, counts, quarantine, "failed", table_checks)
                self._record_failure(report)
                reasons = "; ".join(t["message"] for t in failed)
                raise ValidationFailed(
                    f"batch refused: {reasons}; nothing was added to {self.dataset!r}",
                    hint="fix the source and ingest again; row-level rejects are in the quarantine report",
                    report=report.to_dict(),
                )
            if counts["accepted"] == 0:
                report = self._report(None, counts, quarantine, "unchanged", table_checks)
                self._commit(parent, [], report, reset)
                return report
            if staged:
                self._write_files(con, stage / "data", dedup=counts["duplicates"] > 0)
            files = self._store_files(parts(stage / "data")) if staged else self._store_files(first, digests.result())
            failpoint("ingest.after_files")
            report = self._report(None, counts, quarantine, "created", table_checks)
            self._commit(parent, files, report, reset)
            return report
        finally:
            with contextlib.suppress(Exception):
                bad.close()
            if scan is not None:
                scan.close()
            con.close()
            shutil.rmtree(stage, ignore_errors=True)

    def _first_pass(self, con: duckdb.DuckDBPyConnection, select: str, out: Path) -> list[Path]:
        """Validate every row once: good rows straight to Parquet files, bad ones set aside."""
        cols = ", ".join(quote_ident(c) for c in self.contract.column_names)
        # CASE calls the set-aside function for the bad rows only (never reordered, unlike OR)
        con.execute(
            f"""COPY (SELECT {cols} FROM ({select}) WHERE CASE WHEN _errors IS NULL THEN true ELSE {BAD_ROWS}(_errors, _raw) END)
            TO {quote_literal(str(out))} (FORMAT parquet, FILE_SIZE_BYTES '{_TARGET_FILE_BYTES}', FILENAME_PATTERN 'part_{{i}}')"""
        )
        return parts(out)

    def _clashes(self, con: duckdb.DuckDBPyConnection, files: list[Path], parent: DatasetVersion | None) -> bool:
        """Whether the first pass's good rows repeat a key or a unique value, or clash with the dataset."""
        src = f"read_parquet({file_list(files)})"
        rows = sum(pq.read_metadata(f).num_rows for f in files)
        key = list(self.contract.key_columns)
        checks = [(key, "true")] if key else []
        checks += [([c.name], f"{quote_ident(c.name)} IS NOT NULL") for c in self.contract.columns if c.unique and [c.name] != key]
        for cols, where in checks:
            k = ", ".join(quote_ident(c) for c in cols)
            if len(_repeats(con, f"SELECT {_KEY_HASH.format(k)} AS h FROM {src} WHERE {where}", rows)):
                return True
            existing = self._existing(parent, cols) if parent and set(cols) <= {c["name"] for c in parent.schema} else None
            if existing:
                on = " AND ".join(f"f.{quote_ident(c)} = e.{quote_ident(c)}" for c in cols)
                if one(con, f"SELECT count(*) FROM (SELECT * FROM {src} f SEMI JOIN {existing} e ON {on} LIMIT 1)")[0]:
                    return True
        return False

    def _parent(self) -> tuple[DatasetVersion | None, bool]:
        """The latest version and whether this batch starts the dataset over."""
        parent = latest_version(self.ws, self.dataset)
        if parent is None:
            return None, False
        old = parent.contract if parent.contract_version != self.contract.version else None
        if old is None:
            return parent, False
        problems = breaking_changes(old, self.contract)
        if problems and not self.allow_breaking:
            raise ContractError(
                f"contract {self.contract.name!r} changed incompatibly since {parent.ref}: " + "; ".join(problems),
                hint="make the change compatible (add columns as nullable), or pass --allow-breaking to start "
                "the dataset over from this batch under the new contract (older versions stay readable)",
            )
        return parent, bool(problems)

    def _existing(self, parent: DatasetVersion | None, columns: list[str]) -> str | None:
        if parent is None or not parent.files:
            return None
        paths = [self.ws.artifacts.local_path(f["sha256"]) for f in parent.files]
        files = "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"
        cols = ", ".join(quote_ident(c) for c in columns)
        return f"(SELECT {cols} FROM read_parquet({files}, union_by_name=true))"

    def _check_unique(self, con: duckdb.DuckDBPyConnection, parent: DatasetVersion | None) -> None:
        key = set(self.contract.key_columns)
        for col in self.contract.columns:
            if not col.unique or (len(key) == 1 and col.name in key):
                continue
            q = quote_ident(col.name)
            existing = self._existing(parent, [col.name]) if parent and col.name in {c["name"] for c in parent.schema} else None
            clash = f" OR s.{q} IN (SELECT {q} FROM {existing})" if existing else ""
            raw = "[" + ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in self.contract.column_names) + "]"
            con.execute(
                f"""UPDATE _staged SET _errors = concat_ws(',', _errors, {quote_literal(col.name + '.unique')}),
                    _raw = coalesce(_raw, {raw})
                WHERE rowid IN (
                    SELECT s.rowid FROM _staged s
                    JOIN (SELECT {q}, min(rowid) AS _first FROM _staged WHERE _errors IS NULL AND {q} IS NOT NULL GROUP BY {q}) f
                      ON s.{q} = f.{q}
                    WHERE s._errors IS NULL AND (s.rowid <> f._first{clash}))"""
            )

    def _find_duplicates(self, con: duckdb.DuckDBPyConnection, parent: DatasetVersion | None) -> None:
        key = list(self.contract.key_columns)
        if not key:
            con.execute("CREATE TEMP TABLE _dup (_row BIGINT)")
            return
        k = ", ".join(quote_ident(c) for c in key)
        on = " AND ".join(f"f.{quote_ident(c)} = e.{quote_ident(c)}" for c in key)
        existing = self._existing(parent, key)
        # rows already in the dataset; UNION (not ALL) drops those counted as repeats above
        known = f"UNION SELECT f.rowid FROM _staged f SEMI JOIN {existing} e ON {on} WHERE f._errors IS NULL" if existing else ""
        # Equal keys have equal 64-bit hashes: sorting the hashes (far cheaper than grouping
        # the keys themselves) finds the few that repeat, and only rows with one of those
        # hashes are grouped by their actual key, so a collision never makes a duplicate.
        rows = one(con, "SELECT count(*) FROM _staged")[0]
        repeated = _repeats(con, f"SELECT {_KEY_HASH.format(k)} AS h FROM _staged WHERE _errors IS NULL", rows)
        if not len(repeated) and not existing:
            con.execute("CREATE TEMP TABLE _dup (_row BIGINT)")
            return
        con.register("_dup_hash", pa.table({"h": pa.array(repeated, pa.uint64())}))
        con.execute(
            f"""CREATE TEMP TABLE _dup AS
            WITH candidates AS (
                SELECT rowid AS _row, {k} FROM _staged WHERE _errors IS NULL AND {_KEY_HASH.format(k)} IN (SELECT h FROM _dup_hash)
            ), repeated AS (
                SELECT {k}, min(_row) AS _first FROM candidates GROUP BY {k} HAVING count(*) > 1
            )
            SELECT s._row FROM candidates s JOIN repeated f USING ({k})
            WHERE s._row <> f._first
            {known}"""
        )

    def _counts(self, con: duckdb.DuckDBPyConnection, bad: BadRows, first: list[Path]) -> dict[str, Any]:
        """Outcomes over _staged, the rows set aside by the first pass and its files (when not staged)."""
        # One scan of _staged counts the bad rows and the nulls the table checks need.
        rated = [c for c in self.contract.columns if c.max_null_rate is not None]
        nulls = "".join(
            f", count(*) FILTER (WHERE {quote_ident(c.name)} IS NULL AND (_errors IS NULL OR NOT "
            f"contains(',' || _errors || ',', {quote_literal(',' + c.name + '.type,')})))"
            for c in rated
        )
        staged, rejected, *null_counts = one(
            con, f"SELECT count(*), count(_errors){nulls} FROM _staged"
        ) or (0, 0)
        parse = (one(con, "SELECT count(*) FROM _src_rejects") or (0,))[0]
        dups = (one(con, "SELECT count(*) FROM _dup") or (0,))[0]
        written = 0
        if first:
            counted = "".join(f", count(*) - count({quote_ident(c.name)})" for c in rated)
            written, *file_nulls = one(con, f"SELECT count(*){counted} FROM read_parquet({file_list(first)})")
            null_counts = [a + b for a, b in zip(null_counts, file_nulls, strict=True)]
        by_rule = dict(
            con.sql(
                "SELECT e, count(*) FROM (SELECT unnest(string_split(_errors, ',')) AS e FROM _staged WHERE _errors IS NOT NULL) "
                "GROUP BY e ORDER BY e"
            ).fetchall()
        )
        for rule, n in bad.by_rule.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
        by_rule = dict(sorted(by_rule.items()))
        if parse:
            by_rule["_row.parse"] = parse
        if dups:
            by_rule[".".join(self.contract.key_columns) + ".duplicate"] = dups
        total = staged + written + bad.count
        return {
            "rows_read": total + parse,
            "rejected": rejected + bad.count + parse,
            "duplicates": dups,
            "accepted": total - rejected - bad.count - dups,
            "by_rule": by_rule,
            "staged": total,
            "nulls": {c.name: n + bad.nulls[c.name] for c, n in zip(rated, null_counts, strict=True)},
        }

    def _table_checks(self, counts: dict[str, Any]) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = []
        total = counts["staged"]
        for col in self.contract.columns:
            if col.max_null_rate is None:
                continue
            rate = (counts["nulls"][col.name] / total) if total else 0.0
            checks.append({
                "rule": f"{col.name}.max_null_rate", "passed": rate <= col.max_null_rate, "value": round(rate, 6),
                "limit": col.max_null_rate,
                "message": f"{col.name} is null in {rate:.2%} of rows, above max_null_rate {col.max_null_rate:.2%}",
            })
        if self.contract.min_rows is not None:
            n = counts["rows_read"]
            checks.append({
                "rule": "min_rows", "passed": n >= self.contract.min_rows, "value": n, "limit": self.contract.min_rows,
                "message": f"the batch has {n} rows, fewer than min_rows {self.contract.min_rows}",
            })
        return checks

    def _write_quarantine(self, con: duckdb.DuckDBPyConnection, stage: Path, bad: BadRows) -> str:
        cols = self.contract.column_names
        # every row with errors carries its raw text, so only _errors and _raw are scanned
        raw = ", ".join(f"_raw[{i + 1}] AS {quote_ident(c)}" for i, c in enumerate(cols))
        as_text = ", ".join(f"CAST(s.{quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in cols)
        nulls = ", ".join(f"NULL::VARCHAR AS {quote_ident(c)}" for c in cols)
        dup_rule = quote_literal(".".join(self.contract.key_columns) + ".duplicate")
        path = stage / "quarantine.parquet"
        names = ", ".join(quote_ident(c) for c in cols)
        # the set-aside rows first (as they came, in no fixed order: sorted, for a stable file)
        set_aside = (
            f"SELECT 0 AS _b, NULL::BIGINT AS _o, _errors AS _e, NULL::BIGINT AS _line, string_split(_errors, ',') AS _errors, "
            f"NULL::VARCHAR AS _raw_line, {names} FROM read_parquet({quote_literal(str(bad.path))}) UNION ALL "
            if bad.count else ""
        )
        con.execute(
            f"""COPY (SELECT _line, _errors, _raw_line, {names} FROM (
                {set_aside}SELECT 1 AS _b, _staged.rowid AS _o, NULL AS _e, r._line, string_split(_errors, ',') AS _errors,
                    NULL::VARCHAR AS _raw_line, {raw}
                FROM _staged LEFT JOIN _recheck_lines r ON r._idx = _staged.rowid WHERE _errors IS NOT NULL
                UNION ALL
                SELECT 2, s.rowid, NULL, r._line, [{dup_rule}], NULL, {as_text}
                FROM _staged s SEMI JOIN _dup d ON s.rowid = d._row LEFT JOIN _recheck_lines r ON r._idx = s.rowid
                UNION ALL
                SELECT 3, line, NULL, line, ['_row.parse'], coalesce(raw, '') || '  (' || error || ')', {nulls}
                FROM _src_rejects
            ) ORDER BY _b, _o, {names}, _e) TO {quote_literal(str(path))} (FORMAT parquet)"""
        )
        return self.ws.artifacts.put_file(path, move=True)

    def _write_files(self, con: duckdb.DuckDBPyConnection, out: Path, dedup: bool) -> None:
        cols = ", ".join(quote_ident(c) for c in self.contract.column_names)
        # the anti-join (and its scan of rowid) only when the batch has duplicates at all
        unique = " AND NOT EXISTS (SELECT 1 FROM _dup d WHERE d._row = s.rowid)" if dedup else ""
        con.execute(
            f"""COPY (SELECT {cols} FROM _staged s WHERE _errors IS NULL{unique})
            TO {quote_literal(str(out))} (FORMAT parquet, FILE_SIZE_BYTES '{_TARGET_FILE_BYTES}', FILENAME_PATTERN 'part_{{i}}')"""
        )

    def _store_files(self, paths: list[Path], digests: dict[Path, str] | None = None) -> list[dict[str, Any]]:
        files = []
        for path in paths:
            rows = pq.read_metadata(path).num_rows
            if rows == 0:
                continue
            sha = self.ws.artifacts.put_file(path, move=True, sha=(digests or {}).get(path))
            files.append({"sha256": sha, "rows": rows, "ingest": self.id})
        return files

    def _report(
        self, version: str | None, counts: dict[str, Any], quarantine: str | None, status: str, checks: list[dict[str, Any]]
    ) -> IngestReport:
        return IngestReport(
            dataset=self.dataset,
            version=version,
            rows_read=counts["rows_read"],
            accepted=counts["accepted"] if status != "failed" else 0,
            rejected=counts["rejected"] if status != "failed" else counts["rows_read"] - counts["duplicates"],
            duplicates=counts["duplicates"],
            rejected_by_rule=counts["by_rule"],
            quarantine=self.ws.artifacts.uri(quarantine) if quarantine else None,
            ingest_id=self.id,
            source=self.spec.display,
            contract=self.contract.name,
            contract_version=self.contract.version,
            status=status,
            seconds=time.perf_counter() - self.started,
            table_checks=checks,
            dropped_columns=list(self.dropped),
        )

    # --- catalog ---------------------------------------------------------------------

    def _insert_ingest(self, conn: sa.Connection, report: IngestReport, number: int | None) -> None:
        sha = report.quarantine.rsplit("/", 1)[1] if report.quarantine else None
        conn.execute(tables.ingests.insert().values(
            id=self.id, dataset=self.dataset, version=number, status=report.status, source=report.source,
            contract_name=self.contract.name, contract_version=self.contract.version,
            report=report.to_dict(), quarantine=sha, created_at=utcnow(),
        ))

    def _record_failure(self, report: IngestReport) -> None:
        with self.ws.catalog.write() as conn:
            register_contract(conn, self.contract)
            self._insert_ingest(conn, report, None)
            append_event(conn, "dataset.batch_rejected", self.dataset, {
                "ingest": self.id, "source": report.source,
                "checks": [t for t in report.table_checks if not t["passed"]],
            })

    def _commit(self, parent: DatasetVersion | None, files: list[dict[str, Any]], report: IngestReport, reset: bool) -> None:
        expected = parent.number if parent else None
        if not files:
            with self.ws.catalog.write() as conn:
                if latest_number(conn, self.dataset) != expected:
                    raise ConcurrencyError(f"{self.dataset} changed during ingestion", hint="retry")
                register_contract(conn, self.contract)
                self._insert_ingest(conn, report, None)
                append_event(conn, "dataset.ingest_unchanged", self.dataset, {"ingest": self.id, "rows_read": report.rows_read})
            return
        all_files = ([] if parent is None or reset else list(parent.files)) + files
        report.version = f"v{(expected or 0) + 1}"

        def record(conn: sa.Connection, number: int) -> None:
            self._insert_ingest(conn, report, number)
            failpoint("ingest.before_commit")

        try:
            commit_version(
                self.ws, self.dataset, all_files, kind="ingest", parent=expected, contract=self.contract,
                columns=[{"name": c.name, "type": c.sql_type} for c in self.contract.columns], source=report.source,
                stats={k: v for k, v in report.to_dict().items() if k in ("rows_read", "accepted", "rejected", "duplicates", "rejected_by_rule")}
                | {"reset": reset},
                lineage={"ingest": self.id, "source": report.source, "parent": f"{self.dataset}@v{expected}" if expected else None},
                event={"accepted": report.accepted, "rejected": report.rejected, "duplicates": report.duplicates,
                       "ingest": self.id, "contract_version": self.contract.version},
                within=record,
            )
        except BaseException:
            report.version = None
            raise
        failpoint("ingest.after_commit")


def check_read_all(source: str, dataset: str, source_rows: int | None, rows_read: int) -> None:
    """Refuse the batch when the reader saw fewer (or more) records than the source holds."""
    if source_rows is not None and source_rows != rows_read:
        raise SourceError(
            f"{source} holds {source_rows:,} records but {rows_read:,} were read; nothing was added to {dataset!r}",
            hint="the source changed while it was read, or the reader skipped records: ingest it again, or convert it to Parquet",
        )


def _repeats(con: duckdb.DuckDBPyConnection, hashes_sql: str, rows: int) -> np.ndarray[Any, Any]:
    """The values that occur more than once in a query's single UBIGINT column ``h`` of ``rows`` rows.

    Sorting the hashes in memory is far cheaper than grouping the values they stand for;
    past :data:`_SORT_ROWS` rows DuckDB groups the hashes instead, within its memory limit.
    """
    if rows > _SORT_ROWS:
        return con.execute(f"SELECT h FROM ({hashes_sql}) GROUP BY h HAVING count(*) > 1").fetchnumpy()["h"]
    hashes = con.execute(hashes_sql).fetchnumpy()["h"]
    hashes.sort()
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


def quarantine_rows(ws: Workspace, ref: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The rejected and duplicate rows of the ingest that made ``NAME@vN`` (or the newest ingest for ``NAME``)."""
    from strataml.data._datasets import parse_ref

    name, number = parse_ref(ref)
    t = tables.ingests
    with ws.catalog.read() as conn:
        q = sa.select(t).where(t.c.dataset == name)
        q = q.where(t.c.version == number) if number is not None else q.order_by(t.c.created_at.desc())
        row = conn.execute(q.limit(1)).mappings().first()
    if row is None:
        raise StrataError(f"no ingest of {ref!r} is recorded", hint="see 'strata datasets list'")
    if not row["quarantine"]:
        return []
    path = ws.artifacts.local_path(row["quarantine"])
    table = pq.read_table(path)
    rows: list[dict[str, Any]] = table.to_pylist() if limit is None else table.slice(0, limit).to_pylist()
    return rows
