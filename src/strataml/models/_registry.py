"""The model registry: immutable versions, movable aliases, and loading by alias or number.

A version records its artifact's sha256 and format, the signature, holdout metrics,
parameters, lineage, the feature views it reads and the types its file needs trusted.
Aliases (``champion``, ``challenger``, any name) are the only mutable part: every
move writes the alias history and an event (who, when, why) in the same transaction.
:func:`load_model` verifies the artifact's hash before any parser reads a byte.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from strataml.errors import ConfigError, NotFound, StrataError
from strataml.models import _tables as tables
from strataml.models._definitions import Model
from strataml.models._predictor import Predictor
from strataml.models._serialization import Serialized
from strataml.spine import Workspace, append_event, check_name, current_actor, utcnow

CHAMPION = "champion"
#: formats whose artifact holds weights only; loading rebuilds the network from the definition
NEEDS_DEFINITION = ("torch",)
#: how a version can be loaded: its native artifact or its latest (int8) ONNX export
RUNTIMES = ("native", "onnx", "onnx-int8")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


def check_alias(alias: str) -> str:
    """Refuse alias names that are not identifiers, or that look like version numbers."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise ConfigError(f"invalid alias {alias!r}", hint="use letters, digits, '_' and '-', starting with a letter (e.g. champion)")
    return alias


# --- writing -------------------------------------------------------------------------


def register_version(
    conn: sa.Connection,
    name: str,
    *,
    run_id: str | None,
    sha256: str,
    fmt: str,
    signature: dict[str, Any],
    metrics: dict[str, float],
    params: dict[str, Any],
    lineage: dict[str, Any],
    feature_views: list[str],
    trusted_types: list[str],
    description: str = "",
) -> int:
    """Add the next version of a model inside the caller's write transaction; returns its number."""
    check_name(name, "model name")
    now = utcnow()
    if _create_model(conn, name, now, description):
        append_event(conn, "model.created", f"model:{name}", {})
    _lock_model(conn, name)
    t = tables.model_versions
    number = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.version), 0)).where(t.c.model == name)).scalar_one()) + 1
    conn.execute(
        t.insert().values(
            model=name, version=number, run_id=run_id, sha256=sha256, format=fmt, signature=signature,
            metrics=metrics, params=params, lineage=lineage, feature_views=feature_views,
            trusted_types=trusted_types, created_at=now,
        )
    )
    append_event(conn, "model.version.registered", f"model:{name}", {"version": number, "run": run_id, "sha256": sha256, "metrics": metrics})
    return number


def _create_model(conn: sa.Connection, name: str, now: dt.datetime, description: str) -> bool:
    """Insert the model row unless it exists (safe against a concurrent creator); True if created."""
    values = {"name": name, "created_at": now, "description": description}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return bool(conn.execute(postgresql.insert(tables.models).values(**values).on_conflict_do_nothing()).rowcount)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return bool(conn.execute(sqlite.insert(tables.models).values(**values).on_conflict_do_nothing()).rowcount)
    if conn.execute(sa.select(tables.models.c.name).where(tables.models.c.name == name)).first() is not None:
        return False
    conn.execute(tables.models.insert().values(**values))
    return True


def _lock_model(conn: sa.Connection, name: str) -> None:
    """Serialise writers of one model (version numbers, aliases): a row lock on PostgreSQL.

    SQLite write transactions are already serialised (BEGIN IMMEDIATE).
    """
    conn.execute(sa.select(tables.models.c.name).where(tables.models.c.name == name).with_for_update())


def move_alias(
    conn: sa.Connection, name: str, alias: str, version: int, *, reason: str, action: str = "set", actor: str | None = None
) -> int | None:
    """Point ``alias`` at ``version`` inside the caller's transaction; returns the previous version."""
    check_alias(alias)
    who = actor or current_actor()
    _lock_model(conn, name)
    t = tables.model_versions
    if conn.execute(sa.select(t.c.version).where(t.c.model == name, t.c.version == version)).first() is None:
        raise NotFound(f"model {name!r} has no version {version}", hint=f"'strata models show {name}' lists its versions")
    a = tables.model_aliases
    prev = conn.execute(sa.select(a.c.version).where(a.c.model == name, a.c.alias == alias)).scalar()
    now = utcnow()
    conn.execute(a.delete().where(a.c.model == name, a.c.alias == alias))
    conn.execute(a.insert().values(model=name, alias=alias, version=version, updated_at=now, actor=who, reason=reason))
    conn.execute(
        tables.model_alias_history.insert().values(
            model=name, alias=alias, version=version, previous=prev, action=action, actor=who, reason=reason, ts=now
        )
    )
    append_event(
        conn, "model.alias.moved", f"model:{name}",
        {"alias": alias, "from": prev, "to": version, "action": action, "reason": reason}, actor=who,
    )
    return None if prev is None else int(prev)


def set_alias(ws: Workspace, name: str, alias: str, version: int, *, reason: str = "", actor: str | None = None) -> dict[str, Any]:
    """Move an alias to a version (an event records who, when and why)."""
    with ws.catalog.write() as conn:
        _require_model(conn, name)
        prev = move_alias(conn, name, alias, int(version), reason=reason or "set by hand", actor=actor)
    return {"model": name, "alias": alias, "from": prev, "to": int(version)}


def _alias_stack(conn: sa.Connection, name: str, alias: str) -> list[int]:
    """The alias' assignments still in force, oldest first (a rollback undoes the latest)."""
    h = tables.model_alias_history
    stack: list[int] = []
    for action, version in conn.execute(
        sa.select(h.c.action, h.c.version).where(h.c.model == name, h.c.alias == alias).order_by(h.c.id)
    ):
        if action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != version:
                stack.append(int(version))
        else:
            stack.append(int(version))
    return stack


def rollback(ws: Workspace, name: str, *, alias: str = CHAMPION, reason: str = "", actor: str | None = None) -> dict[str, Any]:
    """Point ``alias`` (the champion by default) back at the version it held before."""
    with ws.catalog.write() as conn:
        _require_model(conn, name)
        _lock_model(conn, name)
        stack = _alias_stack(conn, name, alias)
        if len(stack) < 2:
            raise StrataError(
                f"model {name!r}: {alias} has no previous version to roll back to",
                hint=f"set it explicitly with 'strata models alias {name} {alias} VERSION'",
            )
        target = stack[-2]
        prev = move_alias(conn, name, alias, target, reason=reason or "rollback", action="rollback", actor=actor)
    return {"model": name, "alias": alias, "from": prev, "to": target}


def _require_model(conn: sa.Connection, name: str) -> None:
    if conn.execute(sa.select(tables.models.c.name).where(tables.models.c.name == name)).first() is None:
        known = conn.execute(sa.select(tables.models.c.name).order_by(tables.models.c.name)).scalars().all()
        raise NotFound(f"no model named {name!r} (models: {', '.join(known) or 'none'})", hint="train one with 'strata train NAME'")


# --- reading -------------------------------------------------------------------------


def _version_dict(r: Any) -> dict[str, Any]:
    return {
        "version": r["version"],
        "sha256": r["sha256"],
        "format": r["format"],
        "metrics": dict(r["metrics"]),
        "run": r["run_id"],
        "params": dict(r["params"]),
        "signature": dict(r["signature"]),
        "feature_views": list(r["feature_views"]),
        "lineage": dict(r["lineage"]),
        "created_at": r["created_at"].isoformat(),
    }


def export_dict(r: Any) -> dict[str, Any]:
    """One row of ``model_exports`` as the dictionary ``models show`` prints."""
    return {
        "model": r["model"], "version": int(r["version"]), "format": r["format"], "quantized": r["quantization"] is not None,
        "quantization": r["quantization"], "sha256": r["sha256"], "size": int(r["size"]), "source_sha256": r["source_sha256"],
        **dict(r["report"]), "actor": r["actor"], "created_at": r["created_at"].isoformat(),
    }


def list_models(ws: Workspace) -> list[dict[str, Any]]:
    """Every model with its version numbers, latest version and aliases."""
    v, a = tables.model_versions, tables.model_aliases
    with ws.catalog.read() as conn:
        names = conn.execute(sa.select(tables.models.c.name).order_by(tables.models.c.name)).scalars().all()
        versions: dict[str, list[int]] = {}
        for m, ver in conn.execute(sa.select(v.c.model, v.c.version).order_by(v.c.model, v.c.version)):
            versions.setdefault(m, []).append(int(ver))
        aliases: dict[str, dict[str, int]] = {}
        for m, alias, ver in conn.execute(sa.select(a.c.model, a.c.alias, a.c.version).order_by(a.c.model, a.c.alias)):
            aliases.setdefault(m, {})[alias] = int(ver)
    return [
        {"name": n, "latest": versions[n][-1] if versions.get(n) else None, "versions": versions.get(n, []), "aliases": aliases.get(n, {})}
        for n in names
    ]


def get_model(ws: Workspace, name: str) -> dict[str, Any]:
    """One model: ``versions`` (each with version, sha256, metrics, run…), ``aliases`` and alias history."""
    v, a, h = tables.model_versions, tables.model_aliases, tables.model_alias_history
    with ws.catalog.read() as conn:
        _require_model(conn, name)
        versions = [_version_dict(r) for r in conn.execute(sa.select(v).where(v.c.model == name).order_by(v.c.version)).mappings()]
        e = tables.model_exports
        exports: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(sa.select(e).where(e.c.model == name).order_by(e.c.id)).mappings():
            exports.setdefault(int(r["version"]), []).append(export_dict(r))
        for d in versions:
            d["exports"] = exports.get(d["version"], [])
        aliases = {r.alias: int(r.version) for r in conn.execute(sa.select(a).where(a.c.model == name).order_by(a.c.alias))}
        history = [
            {"alias": r.alias, "from": r.previous, "to": r.version, "action": r.action, "actor": r.actor, "reason": r.reason, "ts": r.ts.isoformat()}
            for r in conn.execute(sa.select(h).where(h.c.model == name).order_by(h.c.id))
        ]
    return {"name": name, "versions": versions, "aliases": aliases, "alias_history": history}


def resolve_version(ws: Workspace, name: str, ref: str | int = CHAMPION) -> int:
    """The version number an alias or number (``3``, ``"v3"``, ``"champion"``) names."""
    with ws.catalog.read() as conn:
        _require_model(conn, name)
        if isinstance(ref, int) or re.fullmatch(r"v?\d+", str(ref)):
            number = int(str(ref).lstrip("v"))
            t = tables.model_versions
            if conn.execute(sa.select(t.c.version).where(t.c.model == name, t.c.version == number)).first() is None:
                raise NotFound(f"model {name!r} has no version {number}", hint=f"'strata models show {name}' lists its versions")
            return number
        a = tables.model_aliases
        found = conn.execute(sa.select(a.c.version).where(a.c.model == name, a.c.alias == str(ref))).scalar()
        if found is None:
            known = conn.execute(sa.select(a.c.alias).where(a.c.model == name).order_by(a.c.alias)).scalars().all()
            raise NotFound(
                f"model {name!r} has no alias {ref!r} (aliases: {', '.join(known) or 'none'})",
                hint=f"set one with 'strata models alias {name} {ref} VERSION'",
            )
        return int(found)


@dataclass
class LoadedModel:
    """A registered model version, loaded and ready to predict."""

    name: str
    version: int
    signature: dict[str, Any]
    feature_views: list[str]
    sha256: str
    format: str
    metrics: dict[str, float]
    lineage: dict[str, Any]
    predictor: Predictor

    @property
    def input_names(self) -> list[str]:
        """The feature names the model takes, in order."""
        return [i["name"] for i in self.signature["inputs"]]

    @property
    def kind(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        return str(self.signature["output"]["kind"])

    def predict(self, rows: Any) -> Any:
        """Positive-class probabilities (binary), values (regression) or class → probability dicts (multiclass)."""
        return self.predictor.predict(rows)


def load_model(
    ws: Workspace, name: str, ref: str | int = CHAMPION, *, runtime: str = "native", definition: Model | None = None
) -> LoadedModel:
    """Load a version by alias or number, verifying the artifact's sha256 before parsing it.

    ``runtime="onnx"`` (or ``"onnx-int8"``) loads the version's latest ONNX export
    instead of its native artifact (see :func:`strataml.models.export_model`). A torch
    version stores weights only: its network is rebuilt from the model's definition
    (``definition``, or the model of that name in the workspace's ``definitions.py``).
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}", hint=f"use one of {', '.join(RUNTIMES)}")
    if runtime != "native":
        from strataml.models._onnx_runtime import require_onnx

        require_onnx("serving an ONNX export")
    number = resolve_version(ws, name, ref)
    v = tables.model_versions
    with ws.catalog.read() as conn:
        r = conn.execute(sa.select(v).where(v.c.model == name, v.c.version == number)).mappings().one()
        artifact = dict(r) if runtime == "native" else _export_row(conn, name, number, runtime)
    if runtime == "native":
        where = f"model {name} v{number} ({artifact['sha256'][:12]})"
    else:
        where = f"ONNX export of model {name} v{number} ({artifact['sha256'][:12]})"
    data = ws.artifacts.read_bytes(artifact["sha256"])  # raises IntegrityError when the bytes changed
    ser = Serialized(data, artifact["format"], list(artifact.get("trusted_types") or []))
    estimator = None
    if ser.format in NEEDS_DEFINITION:
        if definition is None:
            try:
                definition = ws.definitions.get("model", name)
            except NotFound as exc:
                raise NotFound(
                    f"{where} stores weights only and its network is built by the model's definition, "
                    f"but no model named {name!r} is declared in {ws.definitions.origin}",
                    hint="declare the model in definitions.py (from Python: ws.definitions.add(model))",
                ) from exc
        estimator = definition.estimator
    predictor = Predictor.from_serialized(ser, r["signature"], where=where, estimator=estimator)
    return LoadedModel(
        name=name, version=number, signature=dict(r["signature"]), feature_views=list(r["feature_views"]),
        sha256=artifact["sha256"], format=ser.format, metrics=dict(r["metrics"]), lineage=dict(r["lineage"]), predictor=predictor,
    )


def _export_row(conn: sa.Connection, name: str, number: int, runtime: str) -> dict[str, Any]:
    """The version's latest ONNX export for ``runtime`` (``onnx`` or ``onnx-int8``): one
    more artifact of the version, loaded through the same path as its native one."""
    quantization = "int8" if runtime == "onnx-int8" else None
    t = tables.model_exports
    q = sa.select(t).where(t.c.model == name, t.c.version == number, t.c.format == "onnx")
    q = q.where(t.c.quantization == quantization) if quantization else q.where(t.c.quantization.is_(None))
    export = conn.execute(q.order_by(t.c.id.desc())).mappings().first()
    if export is None:
        flag = " --quantize int8" if quantization else ""
        raise NotFound(
            f"model {name} v{number} has no {'int8 ' if quantization else ''}ONNX export",
            hint=f"create one with 'strata models export {name}@v{number} --format onnx{flag}'",
        )
    return {"sha256": export["sha256"], "format": "onnx", "trusted_types": []}
