"""Versioned datasets: immutable versions (``v1``, ``v2``…) made of content-addressed
Parquet files, read as Arrow, pandas or DuckDB.

``NAME@v2`` and ``NAME@latest`` name versions; a version never changes once written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from strataml.data import _tables as tables
from strataml.data._contract import Contract
from strataml.errors import ConcurrencyError, NotFound, StrataError, UnsafePath
from strataml.spine import (
    Catalog,
    Workspace,
    append_event,
    check_name,
    duck,
    quote_literal,
    utcnow,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

_REF = re.compile(r"^(?P<name>[^@]+)(?:@(?P<version>v?\d+|latest))?$")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME[@vN|@N|@latest]`` into the name and the version number (None = latest)."""
    m = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if not m:
        raise UnsafePath(f"invalid dataset reference {ref!r}", hint="use NAME, NAME@latest or NAME@v3")
    name = check_name(m["name"], "dataset name")
    v = m["version"]
    if v is None or v == "latest":
        return name, None
    return name, int(v.lstrip("v"))


def version_sha(files: list[dict[str, Any]]) -> str:
    """The content hash of a version: the sha256 of its files' hashes, in order."""
    return hashlib.sha256("\n".join(f["sha256"] for f in files).encode()).hexdigest()


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset."""

    name: str
    number: int
    sha256: str
    rows: int
    schema: list[dict[str, str]]
    files: list[dict[str, Any]]
    contract_name: str | None
    contract_version: str | None
    source: str | None
    parent: int | None
    stats: dict[str, Any]
    lineage: dict[str, Any]
    created_at: dt.datetime
    workspace: Workspace | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """``name@vN``."""
        return f"{self.name}@v{self.number}"

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return [c["name"] for c in self.schema]

    @property
    def contract(self) -> Contract | None:
        """The contract this version was committed under, as recorded then (None when it has none).

        ``definitions.py`` may have evolved since; this is the version's own contract.
        """
        if not self.contract_name or not self.contract_version:
            return None
        with self._ws().catalog.read() as conn:
            return recorded_contract(conn, self.contract_name, self.contract_version)

    def to_dict(self) -> dict[str, Any]:
        """What ``strata datasets show --json`` prints."""
        return {
            "name": self.name,
            "version": f"v{self.number}",
            "rows": self.rows,
            "sha256": self.sha256,
            "schema": self.schema,
            "contract": self.contract_name,
            "contract_version": self.contract_version,
            "source": self.source,
            "parent": f"v{self.parent}" if self.parent else None,
            "files": len(self.files),
            "stats": self.stats,
            "lineage": self.lineage,
            "created_at": self.created_at.isoformat(),
        }

    # --- reading ---------------------------------------------------------------------

    def _ws(self) -> Workspace:
        if self.workspace is None:
            raise NotFound(f"{self.ref} is not attached to a workspace")
        return self.workspace

    def paths(self) -> list[Path]:
        """Verified local paths of the version's Parquet files (hashes checked now)."""
        store = self._ws().artifacts
        return [store.local_path(f["sha256"]) for f in self.files]

    def sql_source(self, columns: list[str] | None = None) -> str:
        """A DuckDB table expression over the verified files (``read_parquet([...])``)."""
        paths = self.paths()
        if not paths:
            cols = ", ".join(f"NULL::{c['type']} AS \"{c['name']}\"" for c in self.schema)
            return f"(SELECT {cols} WHERE false)"
        files = "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"
        return f"read_parquet({files}, union_by_name=true)"

    def to_duckdb(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyRelation:
        """A lazy DuckDB relation over the version (columns in schema order)."""
        ws = self._ws()
        if con is None:
            con = duck(ws.settings.memory_limit, ws.settings.threads, ws.scratch_dir())
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in self.columns)
        return con.sql(f"SELECT {cols} FROM {self.sql_source()}")

    def to_arrow(self) -> pa.Table:
        """The whole version as an Arrow table."""
        return self.to_duckdb().to_arrow_table()

    def to_pandas(self) -> pd.DataFrame:
        """The whole version as a pandas DataFrame."""
        return self.to_duckdb().df()


def _row_to_version(r: Any, ws: Workspace | None) -> DatasetVersion:
    created = r["created_at"]
    return DatasetVersion(
        name=r["dataset"],
        number=r["number"],
        sha256=r["sha256"],
        rows=r["rows"],
        schema=list(r["schema"]),
        files=list(r["files"]),
        contract_name=r["contract_name"],
        contract_version=r["contract_version"],
        source=r["source"],
        parent=r["parent"],
        stats=dict(r["stats"]),
        lineage=dict(r["lineage"]),
        created_at=created,
        workspace=ws,
    )


def latest_number(conn: sa.Connection, name: str) -> int | None:
    """The newest version number of a dataset inside a transaction (None when it has none)."""
    t = tables.dataset_versions
    return conn.execute(sa.select(sa.func.max(t.c.number)).where(t.c.dataset == name)).scalar()


def get_version(ws: Workspace, ref: str) -> DatasetVersion:
    """The version a reference names; a clear error lists what exists when it does not."""
    name, number = parse_ref(ref)
    t = tables.dataset_versions
    with ws.catalog.read() as conn:
        if number is None:
            number = latest_number(conn, name)
        row = None
        if number is not None:
            row = conn.execute(sa.select(t).where(t.c.dataset == name, t.c.number == number)).mappings().first()
        if row is None:
            existing = conn.execute(sa.select(t.c.number).where(t.c.dataset == name).order_by(t.c.number)).scalars().all()
            if existing:
                raise NotFound(f"dataset {name!r} has no version {ref.split('@', 1)[1]!r}; it has v{existing[0]}…v{existing[-1]}")
            names = conn.execute(sa.select(tables.datasets.c.name).order_by(tables.datasets.c.name)).scalars().all()
            raise NotFound(
                f"no dataset named {name!r} (datasets: {', '.join(names) or 'none'})",
                hint="ingest data first with 'strata ingest SOURCE --contract NAME'",
            )
    return _row_to_version(row, ws)


def list_datasets(catalog: Catalog) -> list[dict[str, Any]]:
    """Every dataset with its latest version, row count and update time."""
    t = tables.dataset_versions
    latest = sa.select(t.c.dataset, sa.func.max(t.c.number).label("n")).group_by(t.c.dataset).subquery()
    q = (
        sa.select(tables.datasets.c.name, tables.datasets.c.kind, t.c.number, t.c.rows, t.c.created_at)
        .select_from(tables.datasets)
        .outerjoin(latest, latest.c.dataset == tables.datasets.c.name)
        .outerjoin(t, sa.and_(t.c.dataset == latest.c.dataset, t.c.number == latest.c.n))
        .order_by(tables.datasets.c.name)
    )
    with catalog.read() as conn:
        return [
            {
                "name": r.name,
                "kind": r.kind,
                "latest": f"v{r.number}" if r.number else None,
                "rows": r.rows or 0,
                "updated_at": r.created_at.isoformat() if r.created_at else None,
            }
            for r in conn.execute(q)
        ]


def list_versions(ws: Workspace, name: str) -> list[DatasetVersion]:
    """Every version of one dataset, oldest first."""
    check_name(name, "dataset name")
    t = tables.dataset_versions
    with ws.catalog.read() as conn:
        rows = conn.execute(sa.select(t).where(t.c.dataset == name).order_by(t.c.number)).mappings().all()
    return [_row_to_version(r, ws) for r in rows]


def diff(ws: Workspace, a_ref: str, b_ref: str) -> dict[str, Any]:
    """What changed from version A to version B: rows, files and schema."""
    a, b = get_version(ws, a_ref), get_version(ws, b_ref)
    if a.name != b.name:
        raise NotFound(f"cannot diff versions of two datasets ({a.name}, {b.name})", hint="compare versions of one dataset")
    a_files = {f["sha256"] for f in a.files}
    b_files = {f["sha256"] for f in b.files}
    a_cols = {c["name"]: c["type"] for c in a.schema}
    b_cols = {c["name"]: c["type"] for c in b.schema}
    return {
        "dataset": a.name,
        "from": f"v{a.number}",
        "to": f"v{b.number}",
        "rows": {"from": a.rows, "to": b.rows, "change": b.rows - a.rows},
        "files_added": len(b_files - a_files),
        "files_removed": len(a_files - b_files),
        "rows_added": sum(f["rows"] for f in b.files if f["sha256"] not in a_files),
        "rows_removed": sum(f["rows"] for f in a.files if f["sha256"] not in b_files),
        "columns_added": sorted(set(b_cols) - set(a_cols)),
        "columns_removed": sorted(set(a_cols) - set(b_cols)),
        "columns_retyped": sorted(c for c in set(a_cols) & set(b_cols) if a_cols[c] != b_cols[c]),
        "contract": {"from": a.contract_version, "to": b.contract_version},
    }


def latest_version(ws: Workspace, name: str) -> DatasetVersion | None:
    """The newest version of dataset ``name``, or None when it has none yet."""
    t = tables.dataset_versions
    with ws.catalog.read() as conn:
        number = latest_number(conn, name)
        if number is None:
            return None
        row = conn.execute(sa.select(t).where(t.c.dataset == name, t.c.number == number)).mappings().one()
    return _row_to_version(row, ws)


# --- contracts and commits -----------------------------------------------------------


def recorded_contract(conn: sa.Connection, name: str, version: str) -> Contract | None:
    """Contract ``name`` at ``version`` as the catalog recorded it (None when unrecorded)."""
    t = tables.contracts
    d = conn.execute(sa.select(t.c.definition).where(t.c.name == name, t.c.version == version)).scalar()
    return Contract.from_dict(d) if d else None


def register_contract(conn: sa.Connection, contract: Contract) -> None:
    """Record ``contract`` at its version in the catalog, once."""
    if recorded_contract(conn, contract.name, contract.version) is not None:
        return
    conn.execute(tables.contracts.insert().values(
        name=contract.name, version=contract.version, definition=contract.to_dict(), created_at=utcnow()
    ))
    append_event(conn, "contract.registered", contract.name, {"version": contract.version})


#: ``parent=LATEST``: the new version does not depend on the one before it (see commit_version)
LATEST: Literal["latest"] = "latest"
_RETRIES = 5


def commit_version(
    ws: Workspace,
    name: str,
    files: list[dict[str, Any]],
    *,
    kind: str,
    columns: list[dict[str, str]],
    lineage: dict[str, Any],
    parent: int | Literal["latest"] | None = LATEST,
    contract: Contract | None = None,
    source: str | None = None,
    stats: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
    reuse_identical: bool = False,
    within: Callable[[sa.Connection, int], None] | None = None,
) -> DatasetVersion:
    """Make ``files`` (every file of the version, in order) the next version of dataset ``name``.

    The version appears in one catalog transaction with its dataset row (of ``kind``),
    its contract and a ``dataset.version_created`` event (carrying ``event`` too);
    ``within(conn, number)`` adds the caller's own rows to that transaction.

    ``parent`` is the version the files were built on (None: the dataset was empty).
    When another writer committed since, nothing is written and :class:`ConcurrencyError`
    says so: the caller rebuilds on the new version. With ``LATEST`` the files stand on
    their own and the version goes after whatever is newest, retrying when a concurrent
    commit takes the number first. With ``reuse_identical``, a newest version with the
    same files and lineage is returned instead of a copy.
    """
    for attempt in range(_RETRIES):
        try:
            return _commit_once(ws, name, files, kind, columns, lineage, parent, contract, source, stats or {},
                                event or {}, reuse_identical, within)
        except sa.exc.IntegrityError:
            # a concurrent commit inserted the same dataset or version number first
            if parent != LATEST or attempt == _RETRIES - 1:
                raise ConcurrencyError(f"{name} changed while this version was committed", hint="retry") from None
    raise AssertionError("unreachable")


def _commit_once(
    ws: Workspace, name: str, files: list[dict[str, Any]], kind: str, columns: list[dict[str, str]],
    lineage: dict[str, Any], parent: int | Literal["latest"] | None, contract: Contract | None, source: str | None,
    stats: dict[str, Any], event: dict[str, Any], reuse_identical: bool, within: Callable[[sa.Connection, int], None] | None,
) -> DatasetVersion:
    t = tables.dataset_versions
    sha = version_sha(files)
    with ws.catalog.write() as conn:
        if conn.dialect.name == "postgresql":
            # SQLite writers already take turns (BEGIN IMMEDIATE); PostgreSQL ones queue here,
            # until this transaction ends, instead of colliding on the version number
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": f"dataset-commit:{name}"})
        current = latest_number(conn, name)
        if parent != LATEST and current != parent:
            raise ConcurrencyError(f"{name} changed during the commit (v{current} appeared)", hint="retry")
        existing_kind = conn.execute(sa.select(tables.datasets.c.kind).where(tables.datasets.c.name == name)).scalar()
        if existing_kind is None:
            conn.execute(tables.datasets.insert().values(name=name, kind=kind, created_at=utcnow()))
        elif existing_kind != kind:
            raise StrataError(
                f"dataset {name!r} holds {existing_kind.replace('_', ' ')} versions, not {kind.replace('_', ' ')} ones",
                hint="choose another dataset name",
            )
        if reuse_identical and current is not None:
            prev = conn.execute(sa.select(t).where(t.c.dataset == name, t.c.number == current)).mappings().one()
            if prev["sha256"] == sha and prev["lineage"] == lineage:
                return _row_to_version(prev, ws)
        if contract is not None:
            register_contract(conn, contract)
        number = (current or 0) + 1
        values: dict[str, Any] = {
            "dataset": name, "number": number, "sha256": sha, "rows": sum(f["rows"] for f in files),
            "schema": columns, "files": files, "contract_name": contract.name if contract else None,
            "contract_version": contract.version if contract else None, "source": source, "parent": current,
            "stats": stats, "lineage": lineage, "created_at": utcnow(),
        }
        conn.execute(t.insert().values(**values))
        if within is not None:
            within(conn, number)
        append_event(conn, "dataset.version_created", name, {"version": f"v{number}", "rows": values["rows"]} | event)
    return _row_to_version(values, ws)
