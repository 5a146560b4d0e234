"""The feature registry: view versions recorded in the catalog, checked against their sources.

``apply`` registers every view the workspace declares; a view's version is the hash
of its definition, so registering an unchanged view is a no-op and a changed one adds
a version. Views are resolved by name (the declared definition, or the newest
registered one) or as ``name@version`` (any registered version, for reproducing
old training sets).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from strataml.data import DatasetVersion, get_version
from strataml.errors import NotFound, StrataError
from strataml.features import _tables as tables
from strataml.features._definitions import Feature, FeatureDefinitionError, FeatureView
from strataml.features._sql import agg_sql, request_select
from strataml.spine import Workspace, append_event, duck, quote_ident, utcnow

#: DuckDB types an entity key may have (online keys are their text form)
KEY_TYPES = {"VARCHAR", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "HUGEINT"}


def engine(ws: Workspace | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for feature work (workspace limits; quiet: no progress bar on stdout)."""
    if ws is None:
        con = duck("256MB", 1)
    else:
        con = duck(ws.settings.memory_limit, ws.settings.threads, ws.scratch_dir())
    con.execute("SET enable_progress_bar = false")
    return con


class FeatureError(StrataError):
    """Features cannot be computed from the data given (bad labels, keys, sources)."""


class FeatureInputError(FeatureError):
    """A lookup's keys or request fields are wrong (a missing key column, a key of the
    wrong type, request fields the request features cannot use): the caller's input is
    at fault, not the definitions or the store."""


@dataclass
class Source:
    """A view's source dataset version, resolved and checked."""

    version: DatasetVersion
    timestamp: str
    types: dict[str, str]
    _paths: list[Path] | None = None

    @property
    def paths(self) -> list[Path]:
        """Local paths of the version's files, hash-verified on first use."""
        if self._paths is None:
            self._paths = self.version.paths()
        return self._paths

    def empty_relation(self) -> str:
        """A typed, empty table expression with the source's columns (no file reads)."""
        cols = ", ".join(f"NULL::{t} AS {quote_ident(c)}" for c, t in self.types.items())
        return f"(SELECT {cols} WHERE false)"


def dataset_timestamp(ws: Workspace, dv: DatasetVersion) -> str | None:
    """The event-time column a dataset version's contract declares (None when it has none)."""
    c = dv.contract
    return c.timestamp if c else None


def resolve_source(ws: Workspace, view: FeatureView, ref: str | None = None) -> Source:
    """The source version of ``view`` (latest unless ``ref``), with its types checked."""
    if view.source is None:
        raise FeatureError(f"feature view {view.name!r} has no source (it holds request features only)")
    dv = get_version(ws, ref or view.source)
    types = {c["name"]: c["type"] for c in dv.schema}
    where = f"feature view {view.name!r} (source {dv.ref})"
    ts = view.timestamp or dataset_timestamp(ws, dv)
    if ts is None:
        raise FeatureDefinitionError(
            f"{where}: the source declares no event-time column", hint="pass timestamp='COLUMN' to st.FeatureView"
        )
    if ts not in types:
        raise FeatureDefinitionError(f"{where}: timestamp column {ts!r} is not in the source (columns: {', '.join(types)})")
    if not (types[ts].startswith("TIMESTAMP") or types[ts] == "DATE"):
        raise FeatureDefinitionError(f"{where}: timestamp column {ts!r} has type {types[ts]}, not a timestamp or date")
    for k in view.keys:
        if k not in types:
            raise FeatureDefinitionError(f"{where}: entity key column {k!r} is not in the source (columns: {', '.join(types)})")
        if types[k] not in KEY_TYPES:
            raise FeatureDefinitionError(f"{where}: entity key column {k!r} has type {types[k]}; keys must be strings or integers")
    for f in view.agg_features:
        if f.column is not None and f.column not in types:
            raise FeatureDefinitionError(
                f"{where}: feature {f.name!r} aggregates column {f.column!r}, which is not in the source "
                f"(columns: {', '.join(types)})"
            )
    return Source(dv, ts, types)


def feature_types(view: FeatureView, source: Source | None, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, str]:
    """The DuckDB type of every feature of ``view``; compiles each expression (clear error if it fails)."""
    own = con is None
    con = con or engine()
    out: dict[str, str] = {}
    try:
        for f in view.features:
            where = f"feature {view.name}.{f.name}"
            if f.kind == "request":
                rel = request_select([f], None)  # type: ignore[list-item]
            elif source is None:
                raise FeatureError(f"{where} needs the view's source")
            elif f.kind == "expr":
                rel = f"SELECT ({f.expr}) AS {quote_ident(f.name)} FROM {source.empty_relation()} s"
            else:
                assert isinstance(f, Feature)
                rel = (
                    f"SELECT {agg_sql(f, 's', quote_ident(source.timestamp))} AS {quote_ident(f.name)} "
                    f"FROM {source.empty_relation()} s"
                )
            try:
                rows = con.execute(f"DESCRIBE {rel}").fetchall()
            except duckdb.Error as exc:
                raise FeatureDefinitionError(
                    f"{where} does not compile: {str(exc).splitlines()[0]}",
                    hint="fix the expression; it is DuckDB SQL over the source row's columns"
                    if f.kind != "request"
                    else "fix the expression; it is DuckDB SQL over the declared request fields",
                ) from exc
            out[f.name] = str(rows[0][1])
    finally:
        if own:
            con.close()
    return out


def check_view(ws: Workspace, view: FeatureView) -> dict[str, str]:
    """Check ``view`` against its source (when it exists yet); returns the feature types."""
    source = None
    if view.source is not None:
        try:
            source = resolve_source(ws, view)
        except NotFound:
            return {}
    return feature_types(view, source)


def register(ws: Workspace, views: list[FeatureView]) -> list[dict[str, Any]]:
    """Record each view's current version in the catalog (one event per new version)."""
    out = []
    for view in views:
        types = check_view(ws, view)
        version = view.version
        with ws.catalog.write() as conn:
            t, tv = tables.feature_views, tables.feature_view_versions
            now = utcnow()
            head = conn.execute(sa.select(t.c.version).where(t.c.name == view.name)).scalar()
            known = conn.execute(sa.select(tv.c.version).where(tv.c.view == view.name, tv.c.version == version)).scalar()
            status = "unchanged"
            if head is None:
                conn.execute(t.insert().values(name=view.name, version=version, created_at=now, updated_at=now))
            if known is None:
                conn.execute(tv.insert().values(
                    view=view.name, version=version, entity=view.entity.name if view.entity else None,
                    source=view.source, definition=view.to_dict(), created_at=now,
                ))
                status = "registered"
            if head is not None and head != version:
                conn.execute(t.update().where(t.c.name == view.name).values(version=version, updated_at=now))
                status = "registered" if known is None else "reactivated"
            if status != "unchanged":
                append_event(conn, "feature_view.registered", view.name, {
                    "version": version, "previous": head, "source": view.source,
                    "features": [f.name for f in view.features],
                })
        out.append({"name": view.name, "version": version, "status": status, "source": view.source,
                    "entity": view.entity.name if view.entity else None, "features": types or [f.name for f in view.features]})
    return out


def apply(ws: Workspace) -> list[dict[str, Any]]:
    """Register every feature view the workspace declares; returns one row per view."""
    views = sorted(ws.definitions.all("feature_view"), key=lambda v: v.name)
    return register(ws, views)


def registered(ws: Workspace, name: str, version: str | None = None) -> FeatureView | None:
    """A registered view version (the head when ``version`` is None), or None."""
    t, tv = tables.feature_views, tables.feature_view_versions
    with ws.catalog.read() as conn:
        if version is None:
            version = conn.execute(sa.select(t.c.version).where(t.c.name == name)).scalar()
            if version is None:
                return None
        d = conn.execute(sa.select(tv.c.definition).where(tv.c.view == name, tv.c.version == version)).scalar()
    return FeatureView.from_dict(d) if d else None


def resolve_view(ws: Workspace, ref: str | FeatureView) -> FeatureView:
    """A view from ``NAME`` (declared, else newest registered), ``NAME@VERSION`` or an object."""
    if isinstance(ref, FeatureView):
        return ref
    name, _, version = ref.strip().partition("@")
    if version:
        found = registered(ws, name, version)
        if found is None:
            raise NotFound(f"feature view {name!r} has no registered version {version!r}", hint="see 'strata features show NAME'")
        return found
    declared = {v.name: v for v in ws.definitions.all("feature_view")}
    if name in declared:
        return declared[name]  # type: ignore[no-any-return]
    found = registered(ws, name)
    if found is None:
        known = sorted(set(declared) | {r["name"] for r in list_views(ws)})
        raise NotFound(
            f"no feature view named {name!r} (views: {', '.join(known) or 'none'})",
            hint="declare it in definitions.py and run 'strata features apply'",
        )
    return found


def list_views(ws: Workspace) -> list[dict[str, Any]]:
    """Every registered view with its current version."""
    t, tv = tables.feature_views, tables.feature_view_versions
    q = sa.select(t.c.name, t.c.version, t.c.updated_at, tv.c.entity, tv.c.source, tv.c.definition).join(
        tv, sa.and_(tv.c.view == t.c.name, tv.c.version == t.c.version)
    ).order_by(t.c.name)
    with ws.catalog.read() as conn:
        rows = conn.execute(q).mappings().all()
    return [
        {"name": r["name"], "version": r["version"], "entity": r["entity"], "source": r["source"],
         "features": len(r["definition"]["features"]), "updated_at": _iso(r["updated_at"])}
        for r in rows
    ]


def show_view(ws: Workspace, name: str) -> dict[str, Any]:
    """A view's definition, feature types and every registered version."""
    view = resolve_view(ws, name)
    tv = tables.feature_view_versions
    with ws.catalog.read() as conn:
        versions = conn.execute(
            sa.select(tv.c.version, tv.c.created_at).where(tv.c.view == view.name).order_by(tv.c.created_at)
        ).all()
    types = check_view(ws, view)
    return {
        "name": view.name, "version": view.version, "entity": view.entity.to_dict() if view.entity else None,
        "source": view.source, "ttl": view.ttl, "timestamp": view.timestamp,
        "features": [f.to_dict() | {"type": types.get(f.name)} for f in view.features],
        "versions": [{"version": v, "created_at": _iso(c)} for v, c in versions],
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

