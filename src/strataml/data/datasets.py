"""Versioned datasets: immutable versions (``v1``, ``v2``…) made of content-addressed
Parquet files, read as Arrow, pandas or DuckDB.

``NAME@v2`` and ``NAME@latest`` name versions; a version never changes once written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from strataml.errors import NotFound, UnsafePath
from strataml.spine import schema
from strataml.spine.catalog import Catalog
from strataml.spine.engine import duck, quote_literal
from strataml.spine.paths import check_name
from strataml.spine.workspace import Workspace

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
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
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
    t = schema.dataset_versions
    return conn.execute(sa.select(sa.func.max(t.c.number)).where(t.c.dataset == name)).scalar()


def get_version(ws: Workspace, ref: str) -> DatasetVersion:
    """The version a reference names; a clear error lists what exists when it does not."""
    name, number = parse_ref(ref)
    t = schema.dataset_versions
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
            names = conn.execute(sa.select(schema.datasets.c.name).order_by(schema.datasets.c.name)).scalars().all()
            raise NotFound(
                f"no dataset named {name!r} (datasets: {', '.join(names) or 'none'})",
                hint="ingest data first with 'strata ingest SOURCE --contract NAME'",
            )
    return _row_to_version(row, ws)


def list_datasets(catalog: Catalog) -> list[dict[str, Any]]:
    """Every dataset with its latest version, row count and update time."""
    t = schema.dataset_versions
    latest = sa.select(t.c.dataset, sa.func.max(t.c.number).label("n")).group_by(t.c.dataset).subquery()
    q = (
        sa.select(schema.datasets.c.name, schema.datasets.c.kind, t.c.number, t.c.rows, t.c.created_at)
        .select_from(schema.datasets)
        .outerjoin(latest, latest.c.dataset == schema.datasets.c.name)
        .outerjoin(t, sa.and_(t.c.dataset == latest.c.dataset, t.c.number == latest.c.n))
        .order_by(schema.datasets.c.name)
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
    t = schema.dataset_versions
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
