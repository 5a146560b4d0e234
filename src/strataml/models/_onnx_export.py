"""ONNX export of registered model versions.

:func:`export_model` converts a version's verified artifact to ONNX (scikit-learn
through skl2onnx, LightGBM and XGBoost through onnxmltools, PyTorch networks through
``torch.onnx.export`` with their input preparation and output head in the graph),
optionally quantises its weight matrices to int8 (onnxruntime dynamic quantisation),
compares its predictions with the native model's on a sample of the version's training
data, and refuses the export when they differ by more than the tolerance. An accepted export is stored in the
artifact store under its sha256 and recorded in the catalog as an export of that
version, with an event.

Exports are loaded through :mod:`strataml.models._onnx_runtime`, which vets the bytes
before onnxruntime sees them.

Each format converts its own models (:meth:`~strataml.models.formats._base.ModelFormat.to_onnx`);
this module checks, stores and records what they produce.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from strataml.errors import ConfigError, StrataError
from strataml.models import _tables as tables
from strataml.models._onnx_runtime import load_onnx, require_onnx
from strataml.models._predictor import Predictor, prepare
from strataml.models._registry import export_dict, load_model, resolve_version
from strataml.models.formats import FORMATS, get_format
from strataml.models.formats._base import ExportRefused as ExportRefused
from strataml.spine import Workspace, append_event, current_actor, utcnow

#: how a deployment may run a version: its native artifact or one of its ONNX exports
QUANTIZATIONS = ("int8",)
#: largest accepted |ONNX - native| on the sample (scaled by max(1, |native|) for regressors)
DEFAULT_TOLERANCE = 1e-4
DEFAULT_INT8_TOLERANCE = 0.05
SAMPLE_ROWS = 512
#: operators whose stored weight matrices dynamic quantisation rewrites
_WEIGHT_OPS = frozenset({"MatMul", "Gemm", "Conv", "Attention", "LSTM", "GRU"})


# --- exporting -----------------------------------------------------------------------


def weight_operators(model: Any) -> list[str]:
    """Names of the nodes whose weights dynamic quantisation would turn into int8."""
    stored = {t.name for t in model.graph.initializer}
    return [
        n.name or n.op_type
        for n in model.graph.node
        if n.op_type in _WEIGHT_OPS and any(i in stored for i in n.input[1:2])
    ]


def _quantize(ws: Workspace, model: Any, what: str) -> bytes:
    if not weight_operators(model):
        ops = sorted({n.op_type for n in model.graph.node})
        raise ExportRefused(
            f"int8 quantisation would not change {what}: dynamic quantisation rewrites weight matrices "
            f"(MatMul/Gemm with stored weights), and its ONNX graph has none (operators: {', '.join(ops)}); "
            "tree ensembles and ONNX's linear-model operators keep their parameters in float",
            hint="export it without --quantize (it is already compact), or quantise a neural network such as an MLP",
        )
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    stage = ws.artifacts.staging_dir()
    try:
        src, dst = stage / "model.onnx", stage / "model.int8.onnx"
        onnx.save_model(model, str(src))
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return dst.read_bytes()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _sample(
    ws: Workspace, lineage: Mapping[str, Any], signature: Mapping[str, Any], rows: int
) -> tuple[pa.Table, str]:
    """Up to ``rows`` rows of the version's training data, else synthetic rows from its signature."""
    names = [i["name"] for i in signature["inputs"]]
    for ref in (lineage.get("training_set"), lineage.get("labels")):
        if not ref:
            continue
        try:
            from strataml.data import get_version
            from strataml.spine import duck, quote_ident

            dv = get_version(ws, str(ref))
            if not set(names) <= set(dv.columns):
                continue
            con = duck(ws.settings.memory_limit, 1, ws.scratch_dir())
            try:
                select = ", ".join(quote_ident(n) for n in names)
                table = con.sql(
                    f"SELECT {select} FROM {dv.sql_source(names)} USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE (7)"
                ).to_arrow_table()
            finally:
                con.close()
            if table.num_rows:
                return table, dv.ref
        except StrataError:
            continue
    rng = np.random.default_rng(7)
    cols: dict[str, Any] = {}
    for i in signature["inputs"]:
        if i["type"] == "string":
            cols[i["name"]] = pa.array([""] * rows)
        elif i["type"] == "bool":
            cols[i["name"]] = pa.array(rng.integers(0, 2, rows).astype(bool))
        elif i["type"] == "int":
            cols[i["name"]] = pa.array(rng.integers(-100, 100, rows))
        else:
            cols[i["name"]] = pa.array(rng.normal(0.0, 100.0, rows))
    return pa.table(cols), "synthetic"


def _max_abs_diff(a: Any, b: Any) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or not np.array_equal(np.isnan(x), np.isnan(y)):
        return float("inf")
    d = np.abs(x - y)
    return float(np.nanmax(d)) if d.size and not np.isnan(d).all() else 0.0


def list_exports(ws: Workspace, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """The exports of a model (or of one version), oldest first."""
    t = tables.model_exports
    q = sa.select(t).where(t.c.model == name)
    if version is not None:
        q = q.where(t.c.version == int(version))
    with ws.catalog.read() as conn:
        return [export_dict(r) for r in conn.execute(q.order_by(t.c.version, t.c.id)).mappings()]


def export_model(
    ws: Workspace,
    name: str,
    ref: str | int = "champion",
    *,
    format: str = "onnx",
    quantize: str | None = None,
    tolerance: float | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """Export a registered version to ONNX, check it against the native model, store and record it.

    Returns the export: ``sha256``, ``size``, ``format``, ``quantized``, ``max_abs_diff``
    (ONNX vs native on the sample), ``tolerance``, ``sample`` and the sizes before
    quantisation. Raises :class:`ExportRefused` when the predictions differ by more
    than ``tolerance`` (scaled by ``max(1, |prediction|)`` for regressors) or the
    quantisation would change nothing. Exporting the same version again returns the
    existing record.
    """
    if format != "onnx":
        raise ConfigError(f"unknown export format {format!r}", hint="use --format onnx")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantisation {quantize!r}", hint="use --quantize int8")
    require_onnx()
    number = resolve_version(ws, name, ref)
    loaded = load_model(ws, name, number)  # verifies the native artifact's hash
    what = f"model {name} v{number} ({loaded.format})"
    fmt = get_format(loaded.format)
    try:
        proto = fmt.to_onnx(loaded.predictor.native, loaded.signature)
    except StrataError:
        raise
    except Exception as exc:
        raise ExportRefused(
            f"{what} could not be converted to ONNX: {type(exc).__name__}: {exc}",
            hint="the converter does not support this estimator",
        ) from exc
    if proto is None:
        raise ExportRefused(
            f"{what} cannot be exported to ONNX: no converter for format {loaded.format!r}",
            hint=f"formats with a converter: {', '.join(n for n, f in FORMATS.items() if f.onnx_packages)}",
        )
    proto.graph.name = f"{name}_v{number}"  # converters name the graph with a random uuid: equal models, equal bytes
    signed = list(loaded.signature["output"].get("classes") or [])
    classes = (
        _estimator_classes(loaded.predictor.native, signed)
        if loaded.kind != "regression"
        else None
    )
    meta = {
        "strataml.model": name,
        "strataml.version": str(number),
        "strataml.source_sha256": loaded.sha256,
    }
    if classes is not None:
        meta["strataml.classes"] = json.dumps(classes)
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    float_bytes = proto.SerializeToString()
    data = _quantize(ws, proto, what) if quantize else float_bytes

    table, source = _sample(ws, loaded.lineage, loaded.signature, sample_rows)
    native = loaded.predictor.predict_matrix(prepare(table, loaded.signature, loaded.format))
    frame = prepare(table, loaded.signature, "onnx")
    exported = load_onnx(data, f"the ONNX export of {what}")
    onnx_pred = Predictor(exported, "onnx", loaded.signature).predict_matrix(frame)
    diff = _max_abs_diff(native, onnx_pred)
    limit = (
        tolerance
        if tolerance is not None
        else (DEFAULT_INT8_TOLERANCE if quantize else DEFAULT_TOLERANCE)
    )
    scale = (
        max(1.0, float(np.nanmax(np.abs(native))))
        if loaded.kind == "regression" and np.size(native)
        else 1.0
    )
    report: dict[str, Any] = {
        "max_abs_diff": diff,
        "tolerance": limit,
        "tolerance_scale": scale,
        "sample": {"source": source, "rows": table.num_rows},
        "size_native": len(ws.artifacts.read_bytes(loaded.sha256)),
        "size_unquantized": len(float_bytes),
        "converter": _package_versions(fmt.onnx_packages),
        "opsets": exported.opsets,
    }
    if quantize:
        report["max_abs_diff_unquantized"] = _max_abs_diff(
            native,
            Predictor(
                load_onnx(float_bytes, f"the ONNX export of {what}"), "onnx", loaded.signature
            ).predict_matrix(frame),
        )
    if not diff <= limit * scale:
        raise ExportRefused(
            f"the ONNX export of {what} is refused: its predictions differ from the native model's by up to {diff:.3g} "
            f"on {table.num_rows} sample rows ({source}), above the tolerance {limit * scale:.3g}",
            hint="the converter does not reproduce this model; "
            + (
                "quantisation costs too much accuracy here (scale the inputs, e.g. StandardScaler before the network), or raise --tolerance"
                if quantize
                else "raise --tolerance if the difference is acceptable"
            ),
        )
    sha = ws.artifacts.put_bytes(data)
    t = tables.model_exports
    with ws.catalog.write() as conn:
        existing = (
            conn.execute(
                sa.select(t)
                .where(t.c.model == name, t.c.version == number, t.c.sha256 == sha)
                .order_by(t.c.id)
            )
            .mappings()
            .first()
        )
        if existing is not None:
            return {**export_dict(existing), "created": False}
        who = current_actor()
        conn.execute(
            t.insert().values(
                model=name,
                version=number,
                format="onnx",
                quantization=quantize,
                sha256=sha,
                size=len(data),
                source_sha256=loaded.sha256,
                report=report,
                actor=who,
                created_at=utcnow(),
            )
        )
        append_event(
            conn,
            "model.version.exported",
            f"model:{name}",
            {
                "version": number,
                "format": "onnx",
                "quantization": quantize,
                "sha256": sha,
                "size": len(data),
                "max_abs_diff": diff,
            },
            actor=who,
        )
        row = (
            conn.execute(
                sa.select(t).where(t.c.model == name, t.c.version == number, t.c.sha256 == sha)
            )
            .mappings()
            .one()
        )
    return {**export_dict(row), "created": True}


def _estimator_classes(native: Any, classes: list[Any]) -> list[Any]:
    """The order of the probability columns the converted model emits: the estimator's
    own classes where it has them (scikit-learn, torch), else the signature's."""
    if hasattr(native, "classes_"):
        return [c.item() if isinstance(c, np.generic) else c for c in native.classes_]
    return list(classes)


def _package_versions(converter: tuple[str, ...]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("onnx", "onnxruntime", *converter):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            continue
    return out
