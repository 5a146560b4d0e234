"""Profiles: summarise once, compare many times.

A profile holds one mergeable summary per column (see :mod:`.sketches`) and is stored
as a content-addressed JSON artifact linked from the ``monitor_profiles`` catalog
table, so a drift check never rereads the rows it summarises.

``profile(ws, "transactions@v2")`` profiles a dataset version. ``profile(ws,
"fraud@v3")`` gives a model version's *reference profile*: its training inputs, its
predictions on the held-out rows, and those rows' predictions and labels as a
``heldout`` table (for performance estimation). Training records what profiling needs
(the version's lineage pins the labels dataset version and its split) and the models
layer cannot import monitoring, so the reference profile is built by monitoring: by
``strata train`` right after it registers a version, or on first use — the training rows are rebuilt from the pinned labels version with the
model's definition, split exactly as training split them, and the held-out rows are
scored by the registered artifact — then stored; ``strata monitor profile NAME@V``
builds it explicitly.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from strataml.errors import ConfigError, NotFound
from strataml.models import model_exists
from strataml.monitoring._sketches import Summary, from_state, new_summary, summarise
from strataml.monitoring._tables import monitor_profiles
from strataml.spine import Workspace, utcnow

PREDICTION = "__prediction__"


@dataclass
class Profile:
    """Column summaries of a dataset version, a model version's reference, or a window of live traffic.

    ``prediction`` summarises the model's output (model profiles); ``heldout`` is the
    version's held-out rows' ``prediction`` (the positive-class probability for binary
    classifiers) and ``label`` (model profiles only).
    """

    ref: str
    kind: str  # "dataset", "model" or "window"
    rows: int
    columns: dict[str, Summary]
    prediction: Summary | None = None
    heldout: pa.Table | None = field(default=None, repr=False)
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Per column the user-facing summary (plus ``prediction`` for a model profile)."""
        out: dict[str, Any] = {"ref": self.ref, "kind": self.kind, "rows": self.rows,
                               "columns": {k: s.to_dict() for k, s in self.columns.items()}}
        if self.prediction is not None:
            out["prediction"] = self.prediction.to_dict()
        if self.heldout is not None:
            out["heldout_rows"] = self.heldout.num_rows
        return out

    def merge(self, other: Profile) -> None:
        """Fold another profile of the same columns into this one (window profiles)."""
        self.rows += other.rows
        for name, s in other.columns.items():
            mine = self.columns.get(name)
            if mine is None:
                mine = self.columns[name] = new_summary(s.kind)
            if mine.kind == s.kind:
                mine.merge(s)  # type: ignore[arg-type]
        if other.prediction is not None:
            if self.prediction is None:
                self.prediction = new_summary(other.prediction.kind)
            if self.prediction.kind == other.prediction.kind:
                self.prediction.merge(other.prediction)  # type: ignore[arg-type]

    def state(self) -> bytes:
        """The serialised summaries (what a window row or a profile artifact stores)."""
        doc: dict[str, Any] = {"ref": self.ref, "kind": self.kind, "rows": self.rows,
                               "columns": {k: s.state() for k, s in self.columns.items()}}
        if self.prediction is not None:
            doc["prediction"] = self.prediction.state()
        return orjson.dumps(doc)

    @classmethod
    def from_state(cls, data: bytes) -> Profile:
        """A profile restored from :meth:`state`."""
        doc = orjson.loads(data)
        return cls(doc["ref"], doc["kind"], int(doc["rows"]), {k: from_state(v) for k, v in doc["columns"].items()},
                   from_state(doc["prediction"]) if doc.get("prediction") else None)


def _store(ws: Workspace, p: Profile) -> Profile:
    doc = orjson.loads(p.state())
    if p.heldout is not None:
        buf = io.BytesIO()
        pq.write_table(p.heldout, buf)
        doc["heldout"] = ws.artifacts.put_bytes(buf.getvalue())
    sha = ws.artifacts.put_bytes(orjson.dumps(doc))
    t = monitor_profiles
    with ws.catalog.write() as conn:
        if conn.execute(sa.select(t.c.sha256).where(t.c.ref == p.ref)).scalar() is None:
            conn.execute(t.insert().values(ref=p.ref, kind=p.kind, sha256=sha, rows=p.rows, created_at=utcnow()))
    p.sha256 = sha
    return p


def _load(ws: Workspace, ref: str) -> Profile | None:
    t = monitor_profiles
    with ws.catalog.read() as conn:
        sha = conn.execute(sa.select(t.c.sha256).where(t.c.ref == ref)).scalar()
    if sha is None:
        return None
    data = ws.artifacts.read_bytes(sha)  # verified against its sha256
    p = Profile.from_state(data)
    held = orjson.loads(data).get("heldout")
    if held:
        p.heldout = pq.read_table(io.BytesIO(ws.artifacts.read_bytes(held)))
    p.sha256 = sha
    return p


def _split_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise ConfigError(f"{ref!r} names no version", hint="write NAME@V, e.g. transactions@v2 or fraud@3")
    return name, version


def profile(ws: Workspace, ref: str, *, rebuild: bool = False) -> Profile:
    """The stored profile of ``DATASET@V`` or ``MODEL@V`` (a model's alias works too),
    built and stored on first use."""
    name, version = _split_ref(ref)
    if model_exists(ws, name):
        from strataml.models import resolve_version

        key = f"model:{name}@v{resolve_version(ws, name, version)}"
        build = _build_model_profile
    else:
        from strataml.data import get_version

        key = f"dataset:{get_version(ws, ref).ref}"
        build = _build_dataset_profile
    if not rebuild:
        found = _load(ws, key)
        if found is not None:
            return found
    return _store(ws, build(ws, key.split(":", 1)[1]))


def _build_dataset_profile(ws: Workspace, ref: str) -> Profile:
    from strataml.data import get_version

    dv = get_version(ws, ref)
    paths = dv.paths()
    if not paths:
        return Profile(f"dataset:{dv.ref}", "dataset", 0, {})
    # each file read whole through ParquetFile (pyarrow.dataset would import pandas, a
    # command's half second); text columns read as dictionaries: counting their values
    # then copies no strings
    schema = pq.read_schema(paths[0])
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    tables = [pq.ParquetFile(str(p), read_dictionary=text).read() for p in paths]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    return Profile(f"dataset:{dv.ref}", "dataset", table.num_rows, summarise(table))


def _build_model_profile(ws: Workspace, ref: str) -> Profile:
    from strataml.models import load_model, load_training_data, resolve_model, split_indices

    name, v = ref.split("@")
    loaded = load_model(ws, name, int(v.removeprefix("v")))
    try:
        definition = resolve_model(ws, name)
    except NotFound as exc:
        raise NotFound(f"model {ref} has no reference profile yet, and building one needs the model's definition",
                       hint="declare the model in definitions.py, then run strata monitor profile " + ref) from exc
    labels = loaded.lineage.get("labels") or definition.labels
    split = dict(loaded.lineage.get("split") or {})
    pinned = copy.copy(definition)
    pinned.labels = labels  # the labels dataset version the version was trained on
    data = load_training_data(ws, pinned)
    train_idx, hold_idx, _ = split_indices(data, pinned, split.get("holdout"))
    inputs = [n for n in loaded.input_names if n in data.table.column_names]
    table = data.table.select(inputs)
    columns = summarise(table.take(pa.array(train_idx)))
    hold = table.take(pa.array(hold_idx))
    out = loaded.predict(hold)
    labels_arr = data.table[data.target].take(pa.array(hold_idx))
    if loaded.kind == "multiclass":
        predicted = [max(d, key=d.get) for d in out]
        pred_arr = pa.array([str(c) for c in predicted])
        heldout = pa.table({"prediction": pa.array([max(d.values()) for d in out], pa.float64()),
                            "predicted": pred_arr, "label": labels_arr.cast(pa.string())})
    else:
        values = np.asarray(out, dtype="float64")
        pred_arr = pa.array(values)
        if loaded.kind == "binary":
            positive = loaded.signature["output"]["classes"][1]
            label = pa.array(np.asarray([x == positive for x in labels_arr.to_pylist()], dtype="float64"))
        else:
            label = labels_arr.cast(pa.float64())
        heldout = pa.table({"prediction": pred_arr, "label": label})
    pred = new_summary("categorical" if loaded.kind == "multiclass" else "numeric")
    pred.update(pred_arr)
    return Profile(f"model:{ref}", "model", len(train_idx), columns, pred, heldout)
