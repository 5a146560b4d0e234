"""Safe loading of ONNX artifacts, and their predictions in strataml's shapes.

:func:`load_onnx` turns verified bytes into an :class:`OnnxModel` (an onnxruntime
session on the CPU) only after refusing anything that is not a well-formed ONNX
model, that references external data files, that defines local functions, or that
uses operators outside the standard domains (``ai.onnx``, ``ai.onnx.ml``,
``com.microsoft``): custom operators run native code from shared libraries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from strataml.errors import MissingExtra, UnsafeModel

#: operator domains an ONNX artifact may use ("" is the default ai.onnx domain)
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def require_onnx(purpose: str = "ONNX export and serving") -> None:
    """Raise :class:`MissingExtra` with the install hint when the ONNX packages are absent."""
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError as exc:
            raise MissingExtra(package, "onnx", purpose) from exc


def _graphs(graph: Any) -> Iterator[Any]:
    """A graph and every subgraph held in node attributes (If/Loop/Scan bodies)."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def _tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
            for sp in attr.sparse_tensors:
                yield sp.values


def check_onnx(data: bytes, where: str = "ONNX artifact") -> Any:
    """Parse and vet ONNX bytes; returns the ``onnx.ModelProto`` or raises :class:`UnsafeModel`.

    Refused: bytes that are not a checkable ONNX model, tensors stored in external
    files (a path read at load time), local functions and operator domains outside
    :data:`ALLOWED_DOMAINS` (custom operators run code from shared libraries).
    """
    require_onnx()
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise UnsafeModel(
            f"{where} is not a valid ONNX model: {exc}",
            hint="re-export it with 'strata models export'",
        ) from None
    if (
        model.ir_version <= 0
        or not model.HasField("graph")
        or not model.graph.node
        or not model.opset_import
    ):
        raise UnsafeModel(
            f"{where} is not a valid ONNX model (no IR version, opset or graph)",
            hint="re-export it with 'strata models export'",
        )
    graphs = list(_graphs(model.graph))
    for g in graphs:
        for t in _tensors(g):
            if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) > 0:
                ref = next((e.value for e in t.external_data if e.key == "location"), "?")
                raise UnsafeModel(
                    f"{where} stores tensor {t.name!r} in an external file ({ref!r}); strataml loads self-contained ONNX models only",
                    hint="re-export the model with its weights inside the file",
                )
    if model.functions:
        raise UnsafeModel(
            f"{where} defines local functions ({', '.join(sorted({f.domain + '.' + f.name for f in model.functions}))}); they are refused",
            hint="export with standard operators only",
        )
    domains = {o.domain for o in model.opset_import} | {n.domain for g in graphs for n in g.node}
    custom = sorted(d for d in domains if d not in ALLOWED_DOMAINS)
    if custom:
        raise UnsafeModel(
            f"{where} uses operators from domain(s) {custom}, outside the standard ones ({', '.join(sorted(d or 'ai.onnx' for d in ALLOWED_DOMAINS))})",
            hint="custom operators need native code strataml does not load; export with standard operators",
        )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise UnsafeModel(
            f"{where} is not a valid ONNX model: {str(exc).splitlines()[0]}",
            hint="re-export it with 'strata models export'",
        ) from None
    return model


@dataclass
class OnnxModel:
    """An onnxruntime session over a vetted ONNX model, mapped to strataml's prediction shapes."""

    session: Any
    inputs: list[tuple[str, str]]  # (name, onnx type) in graph order
    output: str
    classes: list[Any] | None  # the column order of the probabilities, when recorded
    meta: dict[str, str]
    opsets: dict[str, int]

    def _feeds(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        names = list(frame.columns)
        if len(self.inputs) == 1 and self.inputs[0][0] not in names:
            name, kind = self.inputs[0]
            return {
                name: frame.to_numpy(dtype=np.float64 if kind == "tensor(double)" else np.float32)
            }
        feeds: dict[str, np.ndarray] = {}
        for name, kind in self.inputs:
            if name not in names:
                raise UnsafeModel(
                    f"the ONNX model takes input {name!r}, which the model's signature does not have"
                )
            col = frame[name]
            if kind == "tensor(string)":
                feeds[name] = np.array(
                    ["" if v is None or v != v else str(v) for v in col], dtype=object
                ).reshape(-1, 1)
            else:
                feeds[name] = col.to_numpy(
                    dtype=np.float64 if kind == "tensor(double)" else np.float32
                ).reshape(-1, 1)
        return feeds

    def predict_matrix(self, frame: pd.DataFrame, kind: str, classes: list[Any]) -> np.ndarray:
        """Positive-class probabilities (binary), a probability matrix in ``classes`` order, or values."""
        out = np.asarray(self.session.run([self.output], self._feeds(frame))[0], dtype=np.float64)
        if kind == "regression":
            return out.reshape(len(frame))
        out = out.reshape(len(frame), -1)
        if self.classes is not None and self.classes != classes:
            out = out[:, [self.classes.index(c) for c in classes]]
        return out[:, 1] if kind == "binary" else out


def load_onnx(data: bytes, where: str = "ONNX artifact") -> OnnxModel:
    """An :class:`OnnxModel` from verified bytes (vetted by :func:`check_onnx` first)."""
    model = check_onnx(data, where)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UnsafeModel(f"{where} could not be loaded by onnxruntime: {exc}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    outputs = [o.name for o in session.get_outputs()]
    output = (
        "probabilities"
        if "probabilities" in outputs
        else outputs[-1]
        if len(outputs) > 1
        else outputs[0]
    )
    classes = json.loads(meta["strataml.classes"]) if "strataml.classes" in meta else None
    opsets = {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}
    return OnnxModel(
        session, [(i.name, i.type) for i in session.get_inputs()], output, classes, meta, opsets
    )
