"""Runs: parameters, metrics with steps, artifacts, timings and lineage, recorded in the catalog.

``with start_run("fraud") as run:`` opens a run; ``run.log_param``, ``run.log_metric``
and ``run.log_artifact`` record into it. Metric points are buffered and written in
bulk (at most every second or every 5,000 points, and when the run ends), so logging
in a training loop costs microseconds. The latest value of each metric is kept in
its own indexed table, which is what filtering runs by a metric reads.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import sqlalchemy as sa

from strataml.errors import ConfigError, NotFound, StrataError
from strataml.models import _tables as tables
from strataml.spine import Workspace, append_event, utcnow

_FLUSH_POINTS = 5_000
_FLUSH_SECONDS = 1.0
_FILTER = re.compile(r"^\s*([A-Za-z0-9_.:/\-]+)\s*(>=|<=|!=|==|=|>|<)\s*(.+?)\s*$")


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _aware(ts: dt.datetime | None) -> dt.datetime | None:
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts


class Run:
    """One tracked run. Create it with :func:`start_run`; use it as a context manager."""

    def __init__(
        self,
        ws: Workspace,
        name: str,
        *,
        kind: str = "custom",
        parent: Run | str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self.ws = ws
        self.id = uuid.uuid4().hex
        self.name = name
        self.kind = kind
        self.parent_id = parent.id if isinstance(parent, Run) else parent
        self.params: dict[str, Any] = dict(params or {})
        self.tags: dict[str, Any] = dict(tags or {})
        self.metrics: dict[str, float] = {}
        self.lineage: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.status = "running"
        self._points: list[tuple[str, str, int, float, float]] = []
        self._steps: dict[str, int] = {}
        self._dirty_latest: set[str] = set()
        self._last_flush = time.monotonic()
        self._t0 = time.perf_counter()
        self._timers: dict[str, float] = {}
        self.started_at = utcnow()
        with ws.catalog.write() as conn:
            conn.execute(
                tables.runs.insert().values(
                    id=self.id, parent_id=self.parent_id, name=name, kind=kind, status="running",
                    started_at=self.started_at, ended_at=None, params=self._json_params(), metrics={},
                    tags=self.tags, lineage={}, timings={}, error=None,
                )
            )
            if self.params:
                conn.execute(tables.run_params.insert(), [
                    {"run_id": self.id, "key": k, "value": _param_text(v)} for k, v in self.params.items()
                ])
            append_event(conn, "run.started", f"run:{self.id}", {"name": name, "kind": kind, "parent": self.parent_id})

    def _json_params(self) -> dict[str, Any]:
        return orjson.loads(orjson.dumps(self.params, default=str))  # type: ignore[no-any-return]

    # --- logging ---------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record one parameter (written at once; a parameter may be set only once)."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters."""
        new = {k: v for k, v in params.items() if k not in self.params}
        changed = [k for k, v in params.items() if k in self.params and _param_text(self.params[k]) != _param_text(v)]
        if changed:
            raise ConfigError(f"run {self.id}: parameter(s) {changed} already logged with another value", hint="parameters are immutable; use a metric or a tag for values that change")
        if not new:
            return
        self.params.update(new)
        with self.ws.catalog.write() as conn:
            conn.execute(tables.run_params.insert(), [{"run_id": self.id, "key": k, "value": _param_text(v)} for k, v in new.items()])
            conn.execute(tables.runs.update().where(tables.runs.c.id == self.id).values(params=self._json_params()))

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one metric point; ``step`` defaults to the next step of that metric.

        NaN is not stored (databases disagree about it); infinities are.
        """
        v = float(value)
        last = self._steps.get(key, -1)
        step = last + 1 if step is None else int(step)
        if step > last:
            self._steps[key] = step
        if v != v:  # NaN
            return
        self._points.append((self.id, key, step, v, time.time()))
        if math.isfinite(v):
            self.metrics[key] = v
            self._dirty_latest.add(key)
        if len(self._points) % 512 == 0 and (len(self._points) >= _FLUSH_POINTS or time.monotonic() - self._last_flush > _FLUSH_SECONDS):
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metric points at one step."""
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_artifact(self, source: str | os.PathLike[str] | bytes, name: str | None = None) -> str:
        """Store a file (or bytes) in the artifact store and attach it to the run; returns its sha256."""
        if isinstance(source, bytes):
            sha = self.ws.artifacts.put_bytes(source)
            size = len(source)
            name = name or sha[:12]
        else:
            path = Path(source)
            if not path.is_file():
                raise NotFound(f"artifact file {path} does not exist", hint="pass the path of an existing file, or bytes")
            sha = self.ws.artifacts.put_file(path)
            size = path.stat().st_size
            name = name or path.name
        with self.ws.catalog.write() as conn:
            t = tables.run_artifacts
            conn.execute(t.delete().where(t.c.run_id == self.id, t.c.name == name))
            conn.execute(t.insert().values(run_id=self.id, name=name, sha256=sha, size=size, created_at=utcnow()))
        return sha

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Add or change tags (free-form labels written when the run ends)."""
        self.tags.update(tags)

    def set_lineage(self, **lineage: Any) -> None:
        """Merge entries into the run's lineage (written when the run ends)."""
        self.lineage.update(lineage)

    def timer(self, phase: str) -> _Timer:
        """``with run.timer("fit"):`` adds the block's wall time to ``timings[phase]``."""
        return _Timer(self, phase)

    # --- persistence -----------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered metric points and the latest metric values."""
        self._last_flush = time.monotonic()
        if not self._points and not self._dirty_latest:
            return
        with self.ws.catalog.write() as conn:
            self._write_points(conn, update_run=True)

    def _write_points(self, conn: sa.Connection, *, update_run: bool) -> None:
        points, self._points = self._points, []
        keys, self._dirty_latest = sorted(self._dirty_latest), set()
        if points:
            _insert_points(conn, points)
        if keys:
            t = tables.run_latest_metrics
            conn.execute(t.delete().where(t.c.run_id == self.id, t.c.key.in_(keys)))
            conn.execute(t.insert(), [{"run_id": self.id, "key": k, "value": self.metrics[k]} for k in keys])
            if update_run:
                conn.execute(tables.runs.update().where(tables.runs.c.id == self.id).values(metrics=dict(self.metrics)))

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Finish the run: write what is buffered, timings, lineage, tags and the final status, in one transaction."""
        if self.status != "running":
            return
        self.timings.setdefault("total_s", round(time.perf_counter() - self._t0, 6))
        self.status = status
        with self.ws.catalog.write() as conn:
            self._write_points(conn, update_run=False)
            conn.execute(
                tables.runs.update().where(tables.runs.c.id == self.id).values(
                    status=status, ended_at=utcnow(), timings=self.timings,
                    lineage=orjson.loads(orjson.dumps(self.lineage, default=str)),
                    tags=orjson.loads(orjson.dumps(self.tags, default=str)), metrics=dict(self.metrics), error=error,
                )
            )
            append_event(conn, f"run.{status}", f"run:{self.id}", {"name": self.name, "kind": self.kind, "metrics": dict(self.metrics)})

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.end("finished")
        else:
            self.end("failed", f"{type(exc).__name__}: {exc}")


def _copy_text(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_float(v: float) -> str:
    return repr(v) if math.isfinite(v) else ("Infinity" if v > 0 else "-Infinity")


def _insert_points(conn: sa.Connection, points: list[tuple[str, str, int, float, float]]) -> None:
    """Bulk-insert metric points: one COPY on PostgreSQL, one driver-level executemany elsewhere."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        keys = {k: _copy_text(k) for k in {p[1] for p in points}}
        body = "".join(f"{p[0]}\t{keys[p[1]]}\t{p[2]}\t{_copy_float(p[3])}\t{p[4]!r}\n" for p in points)
        with raw.cursor() as cur, cur.copy("COPY run_metrics (run_id, key, step, value, ts) FROM STDIN") as copy:
            copy.write(body.encode())
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("INSERT INTO run_metrics (run_id, key, step, value, ts) VALUES (?, ?, ?, ?, ?)", points)
        return
    conn.execute(tables.run_metrics.insert(), [dict(zip(("run_id", "key", "step", "value", "ts"), p, strict=True)) for p in points])


class _Timer:
    def __init__(self, run: Run, phase: str) -> None:
        self.run, self.phase = run, phase

    def __enter__(self) -> _Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        key = f"{self.phase}_s"
        self.run.timings[key] = round(self.run.timings.get(key, 0.0) + time.perf_counter() - self.t0, 6)


def start_run(
    name: str,
    *,
    workspace: Workspace | str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: Run | str | None = None,
    kind: str = "custom",
) -> Run:
    """Open a tracked run: ``with st.start_run("exp", params={...}) as run: run.log_metric(...)``.

    ``workspace`` is a :class:`Workspace`, a folder, or None for the one found from
    the current folder upward. The run ends ``finished`` when the block exits normally
    and ``failed`` (with the error) when it raises.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    return Run(ws, name, kind=kind, parent=parent, params=params, tags=tags)


# --- reading -------------------------------------------------------------------------


def _iso(v: Any) -> str | None:
    """ISO text of a catalog timestamp: SQLite hands back its stored text, PostgreSQL a datetime."""
    if v is None:
        return None
    if isinstance(v, str):
        return v if "T" in v else v.replace(" ", "T", 1) + "+00:00"
    ts = _aware(v)
    return ts.isoformat() if ts is not None else None


def _doc(v: Any) -> dict[str, Any]:
    """A JSON column read as text (parsed with orjson, much faster than the driver's json)."""
    if v is None:
        return {}
    if isinstance(v, str | bytes):
        return dict(orjson.loads(v))
    return dict(v)


def _run_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "status": r.status,
        "parent": r.parent_id,
        "started_at": _iso(r.started_at),
        "ended_at": _iso(r.ended_at),
        "params": _doc(r.params),
        "metrics": _doc(r.metrics),
    }


def _ts_text(col: Any, dialect: str) -> Any:
    """A timestamp column as ISO text computed by the database (no per-row Python parsing)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", col), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
    return sa.type_coerce(col, sa.String)  # SQLite already stores text


def _list_columns(dialect: str) -> list[Any]:
    r = tables.runs
    return [
        r.c.id, r.c.name, r.c.kind, r.c.status, r.c.parent_id,
        _ts_text(r.c.started_at, dialect).label("started_at"),
        _ts_text(r.c.ended_at, dialect).label("ended_at"),
        sa.cast(r.c.params, sa.Text).label("params"),
        sa.cast(r.c.metrics, sa.Text).label("metrics"),
    ]


def parse_filter(text: str) -> tuple[str, str, str]:
    """``"roc_auc>=0.8"`` → ``("roc_auc", ">=", "0.8")``."""
    m = _FILTER.fullmatch(text)
    if not m:
        raise ConfigError(f"cannot read the filter {text!r}", hint="write KEY OP VALUE, e.g. 'roc_auc>=0.8' or 'n_estimators=200' (OP: = != > >= < <=)")
    key, op, value = m.groups()
    return key, "=" if op == "==" else op, value


_OPS = {"=": "__eq__", "!=": "__ne__", ">": "__gt__", ">=": "__ge__", "<": "__lt__", "<=": "__le__"}


def list_runs(
    ws: Workspace,
    *,
    name: str | None = None,
    metric_filters: list[str] | None = None,
    param_filters: list[str] | None = None,
    status: str | None = None,
    parent: str | None = None,
    kind: str | None = None,
    order_by: str | None = None,
    ascending: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs matching every filter, newest first (or by a metric with ``order_by``).

    Metric filters compare the latest value numerically (``roc_auc>=0.8``); parameter
    filters compare the recorded text (``max_depth=6``; ``!=`` too).
    """
    r = tables.runs
    dialect = ws.catalog.dialect
    conds: list[Any] = []
    # each filter is an indexed lookup on (key, value) turned into a set of run ids
    for f in metric_filters or []:
        key, op, value = parse_filter(f)
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"metric filter {f!r}: {value!r} is not a number") from None
        m = tables.run_latest_metrics
        conds.append(r.c.id.in_(sa.select(m.c.run_id).where(m.c.key == key, getattr(m.c.value, _OPS[op])(number))))
    for f in param_filters or []:
        key, op, value = parse_filter(f)
        if op not in ("=", "!="):
            raise ConfigError(f"parameter filter {f!r}: parameters compare as text, with = or !=")
        p = tables.run_params
        conds.append(r.c.id.in_(sa.select(p.c.run_id).where(p.c.key == key, getattr(p.c.value, _OPS[op])(value))))
    for col, want in ((r.c.name, name), (r.c.status, status), (r.c.parent_id, parent), (r.c.kind, kind)):
        if want:
            conds.append(col == want)
    source: Any = r
    if order_by:
        o = tables.run_latest_metrics.alias("ord")
        source = r.join(o, sa.and_(o.c.run_id == r.c.id, o.c.key == order_by))
        order = [o.c.value.asc() if ascending else o.c.value.desc(), r.c.id]
    else:
        order = [r.c.started_at.asc() if ascending else r.c.started_at.desc(), r.c.id]
    if dialect in ("sqlite", "postgresql"):
        return _list_as_json(ws, source, conds, order, limit)
    q = sa.select(*_list_columns(dialect)).select_from(source).where(*conds).order_by(*order)
    if limit is not None:
        q = q.limit(limit)
    with ws.catalog.read() as conn:
        rows = conn.execute(q).all()
    return [_run_dict(x) for x in rows]


def _list_as_json(ws: Workspace, source: Any, conds: list[Any], order: list[Any], limit: int | None) -> list[dict[str, Any]]:
    """The listing built as one JSON document by the database and parsed once (10,000 runs in milliseconds)."""
    r = tables.runs
    dialect = ws.catalog.dialect
    inner = sa.select(
        r.c.id, r.c.name, r.c.kind, r.c.status, r.c.parent_id, r.c.started_at, r.c.ended_at, r.c.params, r.c.metrics,
        sa.func.row_number().over(order_by=order).label("rn"),
    ).select_from(source).where(*conds).order_by(*order)
    if limit is not None:
        inner = inner.limit(limit)
    sub = inner.subquery()
    if dialect == "sqlite":
        columns: list[tuple[str, Any]] = [
            ("started_at", sa.func.replace(sa.type_coerce(sub.c.started_at, sa.Text), " ", "T").op("||")("+00:00")),
            ("ended_at", sa.func.replace(sa.type_coerce(sub.c.ended_at, sa.Text), " ", "T").op("||")("+00:00")),
            ("params", sa.func.json(sub.c.params)), ("metrics", sa.func.json(sub.c.metrics)),
        ]
        agg, obj = sa.func.json_group_array, sa.func.json_object
    else:
        # UTC wall time; PostgreSQL writes it as ISO text without an offset, added below
        columns = [
            ("started_at", sa.func.timezone("UTC", sub.c.started_at)), ("ended_at", sa.func.timezone("UTC", sub.c.ended_at)),
            ("params", sub.c.params), ("metrics", sub.c.metrics),
        ]
        agg, obj = sa.func.json_agg, sa.func.json_build_object
    columns = [("rn", sub.c.rn), ("id", sub.c.id), ("name", sub.c.name), ("kind", sub.c.kind), ("status", sub.c.status),
               ("parent", sub.c.parent_id), *columns]
    # one array per column (no key repeated per row): less to build, send and parse
    doc = obj(*[x for key, col in columns for x in (key, agg(col))])
    q = sa.select(sa.cast(doc, sa.Text)).select_from(sub)
    with ws.catalog.read() as conn:
        text = conn.execute(q).scalar()
    cols: dict[str, list[Any] | None] = orjson.loads(text) if text else {}
    rn = cols.get("rn") or []
    if not rn:
        return []
    if dialect == "postgresql":
        for key in ("started_at", "ended_at"):
            cols[key] = [None if v is None else v + "+00:00" for v in cols[key] or []]
    keys = [k for k, _ in columns if k != "rn"]
    rows = [dict(zip(keys, t, strict=True)) for t in zip(*(cols[k] or [] for k in keys), strict=True)]
    if any(rn[i] > rn[i + 1] for i in range(len(rn) - 1)):
        rows = [row for _, row in sorted(zip(rn, rows, strict=True), key=lambda p: p[0])]
    return rows


def resolve_run_id(ws: Workspace, run_id: str) -> str:
    """The full id of a run given its id or a unique prefix (at least 6 characters)."""
    r = tables.runs
    if not re.fullmatch(r"[0-9a-f]{6,32}", run_id or ""):
        raise NotFound(f"{run_id!r} is not a run id", hint="run ids are hex; 'strata runs list' shows them")
    with ws.catalog.read() as conn:
        ids = conn.execute(sa.select(r.c.id).where(r.c.id.startswith(run_id)).limit(2)).scalars().all()
    if not ids:
        raise NotFound(f"no run with id {run_id!r}", hint="'strata runs list' shows the runs")
    if len(ids) > 1:
        raise NotFound(f"run id prefix {run_id!r} is ambiguous", hint="give more characters of the id")
    return str(ids[0])


def get_run(ws: Workspace, run_id: str, *, history: bool = True) -> dict[str, Any]:
    """Everything about one run: params, latest metrics, metric history, artifacts, lineage, timings, children."""
    rid = resolve_run_id(ws, run_id)
    r = tables.runs
    with ws.catalog.read() as conn:
        out = _run_dict(conn.execute(sa.select(*_list_columns(ws.catalog.dialect)).where(r.c.id == rid)).one())
        row = conn.execute(sa.select(r.c.tags, r.c.lineage, r.c.timings, r.c.error).where(r.c.id == rid)).one()
        out.update(tags=dict(row.tags), lineage=dict(row.lineage), timings=dict(row.timings), error=row.error)
        a = tables.run_artifacts
        out["artifacts"] = [
            {"name": x.name, "sha256": x.sha256, "size": x.size}
            for x in conn.execute(sa.select(a).where(a.c.run_id == rid).order_by(a.c.name))
        ]
        out["children"] = list(conn.execute(sa.select(r.c.id).where(r.c.parent_id == rid).order_by(r.c.started_at, r.c.id)).scalars())
        if history:
            m = tables.run_metrics
            hist: dict[str, list[list[float]]] = {}
            for x in conn.execute(sa.select(m.c.key, m.c.step, m.c.value).where(m.c.run_id == rid).order_by(m.c.key, m.c.step, m.c.id)):
                hist.setdefault(x.key, []).append([x.step, x.value])
            out["history"] = hist
    return out


def metric_history(ws: Workspace, run_id: str, key: str) -> list[tuple[int, float]]:
    """The ``(step, value)`` points of one metric of one run, in step order."""
    rid = resolve_run_id(ws, run_id)
    m = tables.run_metrics
    with ws.catalog.read() as conn:
        rows = conn.execute(sa.select(m.c.step, m.c.value).where(m.c.run_id == rid, m.c.key == key).order_by(m.c.step, m.c.id)).all()
    return [(int(s), float(v)) for s, v in rows]


def compare_runs(ws: Workspace, run_ids: list[str]) -> dict[str, Any]:
    """Runs side by side: each parameter and metric as one row, one column per run."""
    if len(run_ids) < 2:
        raise StrataError("compare needs at least two runs", hint="strata runs compare RUN_A RUN_B [RUN_C…]")
    runs = [get_run(ws, rid, history=False) for rid in run_ids]
    params = sorted({k for x in runs for k in x["params"]})
    metrics = sorted({k for x in runs for k in x["metrics"]})
    return {
        "runs": [{"id": x["id"], "name": x["name"], "status": x["status"], "started_at": x["started_at"]} for x in runs],
        "params": {k: [x["params"].get(k) for x in runs] for k in params},
        "metrics": {k: [x["metrics"].get(k) for x in runs] for k in metrics},
        "differs": sorted(
            [f"param:{k}" for k in params if len({_param_text(x["params"].get(k)) for x in runs}) > 1]
            + [f"metric:{k}" for k in metrics if len({x["metrics"].get(k) for x in runs}) > 1]
        ),
    }


def iter_children(ws: Workspace, run_id: str) -> Iterator[dict[str, Any]]:
    """Child runs (tuning trials) of a run, oldest first."""
    yield from reversed(list_runs(ws, parent=resolve_run_id(ws, run_id)))
