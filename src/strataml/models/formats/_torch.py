"""The torch model format: safetensors weights with a JSON header, and nothing else.

:func:`dump` stores a fitted :class:`~strataml.models._torch_adapter.TorchEstimator`'s
weights as safetensors and its data (inputs, standardisation, classes, targets,
hyper-parameters) as a JSON header in the file's metadata; :func:`verify` checks the
layout and every header field without torch; :func:`load` rebuilds the network from
the model's definition (never from the file) and loads the weights into it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from strataml.errors import ConfigError, MissingExtra, UnsafeModel
from strataml.models._pickle_guard import refuse_pickle
from strataml.models._torch_adapter import (
    FORMAT,
    FORMAT_VERSION,
    LOSSES,
    OPTIMIZERS,
    PARAMS,
    TorchEstimator,
    _check_fitted,
    _torch,
)
from strataml.models.formats._base import EstimatorFormat, ExportRefused, Serialized, float_inputs

HEADER_FIELDS = {
    "format",
    "version",
    "inputs",
    "task",
    "classes",
    "mean",
    "scale",
    "target_mean",
    "target_scale",
    "n_outputs",
    "params",
}
_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}
_MAX_HEADER = 16 * 1024 * 1024


def dump(estimator: TorchEstimator) -> bytes:
    """The fitted network as canonical safetensors bytes with the JSON header as metadata."""
    _check_fitted(estimator)
    _torch("saving a TorchEstimator")
    from safetensors.torch import save

    tensors = {
        k: v.detach().to("cpu").contiguous() for k, v in estimator.module_.state_dict().items()
    }
    seen: dict[int, str] = {}
    for k, v in tensors.items():
        if v.numel() and v.data_ptr() in seen:
            raise UnsafeModel(
                f"parameters {seen[v.data_ptr()]!r} and {k!r} share memory (tied weights), which safetensors cannot store",
                hint="networks with tied weights are not supported; give each layer its own parameters",
            )
        seen[v.data_ptr()] = k
    header = json.dumps(estimator.header(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return bytes(save(tensors, metadata={"strataml": header}))


def _check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise UnsafeModel(
            f"{where} is not a strataml torch artifact: {what}",
            hint="strataml saves torch models as safetensors with a JSON header; re-create it with 'strata train'",
        )


def verify(data: bytes, where: str) -> dict[str, Any]:
    """Check the safetensors layout and the JSON header without torch; returns the header.

    A pickle (``torch.save`` output) is refused as such; any header field outside the
    format is refused too: an artifact holds weights and data, never a reference to code.
    """
    try:
        return _verify(data, where)
    except UnsafeModel:
        refuse_pickle(data, where)
        raise


def _verify(data: bytes, where: str) -> dict[str, Any]:
    _check(len(data) >= 10, where, "too short")
    n = int.from_bytes(data[:8], "little")
    _check(
        2 <= n <= min(len(data) - 8, _MAX_HEADER) and data[8:9] == b"{",
        where,
        "no safetensors header",
    )
    try:
        layout = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsafeModel(f"{where} has an unreadable safetensors header: {exc}") from None
    _check(isinstance(layout, dict), where, "the safetensors header is not an object")
    meta = layout.pop("__metadata__", None)
    _check(
        isinstance(meta, dict) and "strataml" in meta, where, "no strataml header in its metadata"
    )
    assert isinstance(meta, dict)
    extra = sorted(set(meta) - {"strataml"})
    if extra:
        raise UnsafeModel(
            f"{where} carries metadata field(s) {extra} outside strataml's torch format; it is refused "
            "(an artifact holds weights and data, never a reference to code)"
        )
    end = 0
    for name, info in sorted(
        layout.items(),
        key=lambda kv: kv[1].get("data_offsets", [0])[0] if isinstance(kv[1], dict) else 0,
    ):
        _check(
            isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"},
            where,
            f"tensor {name!r} is malformed",
        )
        _check(info["dtype"] in _DTYPES, where, f"tensor {name!r} has dtype {info['dtype']!r}")
        shape, offsets = info["shape"], info["data_offsets"]
        _check(
            isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape),
            where,
            f"tensor {name!r} has a bad shape",
        )
        _check(
            isinstance(offsets, list)
            and len(offsets) == 2
            and offsets[0] == end
            and offsets[1] >= end,
            where,
            f"tensor {name!r} has bad offsets",
        )
        end = offsets[1]
    _check(end == len(data) - 8 - n, where, "its tensors do not cover the file exactly")
    try:
        head = json.loads(meta["strataml"])
    except (TypeError, ValueError) as exc:
        raise UnsafeModel(f"{where} has an unreadable strataml header: {exc}") from None
    _check(isinstance(head, dict), where, "the strataml header is not an object")
    unknown = sorted(set(head) - HEADER_FIELDS)
    if unknown:
        raise UnsafeModel(
            f"{where} has header field(s) {unknown} outside strataml's torch format; it is refused "
            "(an artifact holds weights and data, never a reference to code)",
            hint="the network is built by the model's definition in definitions.py, never by the artifact",
        )
    _check(
        head.get("format") == FORMAT and head.get("version") == FORMAT_VERSION,
        where,
        "unknown format or version",
    )
    params = head.get("params")
    _check(isinstance(params, dict), where, "no hyper-parameters")
    assert isinstance(params, dict)
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise UnsafeModel(
            f"{where} has hyper-parameter(s) {unknown} outside strataml's torch format; it is refused "
            "(an artifact holds weights and data, never a reference to code)"
        )
    for k, types in PARAMS.items():
        _check(
            k in params
            and isinstance(params[k], types)
            and (bool not in types or type(params[k]) is bool),
            where,
            f"hyper-parameter {k!r} is missing or of the wrong type",
        )
    _check(
        params["loss"] in LOSSES and params["optimizer"] in OPTIMIZERS,
        where,
        "unknown loss or optimizer",
    )
    inputs = head.get("inputs")
    _check(
        isinstance(inputs, list) and all(isinstance(i, str) for i in inputs),
        where,
        "bad input names",
    )
    assert isinstance(inputs, list)
    for key in ("mean", "scale"):
        v = head.get(key)
        _check(
            isinstance(v, list)
            and len(v) == len(inputs)
            and all(isinstance(f, int | float) for f in v),
            where,
            f"bad {key}",
        )
    _check(
        isinstance(head.get("classes"), list)
        and all(isinstance(c, str | int | float | bool) for c in head["classes"]),
        where,
        "bad classes",
    )
    _check(isinstance(head.get("n_outputs"), int), where, "bad n_outputs")
    return dict(head)


def load(data: bytes, definition: Any, where: str) -> TorchEstimator:
    """Rebuild a fitted estimator: the network from ``definition`` (the model's
    TorchEstimator in the workspace), the weights and statistics from ``data``."""
    head = verify(data, where)
    if not isinstance(definition, TorchEstimator):
        raise ConfigError(
            f"{where} holds torch weights, but the model's definition has a {type(definition).__name__} estimator, not a TorchEstimator",
            hint="the network is rebuilt from the definition it was trained with; restore that st.TorchEstimator, or train a new version",
        )
    torch = _torch("loading a torch model")
    from safetensors.torch import load as load_tensors

    est = TorchEstimator(definition.module, **head["params"])
    est._check_params()
    est.feature_names_in_ = list(head["inputs"])
    est.mean_, est.scale_ = list(map(float, head["mean"])), list(map(float, head["scale"]))
    est.classes_ = np.asarray(head["classes"])
    est.target_mean_, est.target_scale_ = head["target_mean"], head["target_scale"]
    est.n_outputs_ = int(head["n_outputs"])
    try:
        tensors = load_tensors(data)
    except Exception as exc:
        raise UnsafeModel(f"{where} could not be read by safetensors: {exc}") from exc
    with torch.random.fork_rng(devices=[]):
        net = est._build(torch, len(est.feature_names_in_), est.n_outputs_)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in net.state_dict().items()}
    stored = {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}
    if expected != stored:
        diff = sorted(set(expected.items()) ^ set(stored.items()), key=str)[:4]
        raise ConfigError(
            f"{where}: the network the model's definition builds does not match the stored weights "
            f"(first differences: {', '.join(f'{k} {s[0]} {s[1]}' for k, s in diff)})",
            hint="restore the module= definition this version was trained with, or train a new version",
        )
    net.load_state_dict(tensors, strict=True)
    net.eval()
    est.module_ = net
    return est


class TorchFormat(EstimatorFormat):
    """``st.TorchEstimator`` networks: safetensors weights plus a JSON header; the network
    itself is rebuilt from the model's definition at load time."""

    name = "torch"
    extra: str | None = "torch"
    onnx_packages: tuple[str, ...] = ("torch", "onnxscript")

    def claims(self, estimator: Any) -> bool:
        return getattr(type(estimator), "__strata_format__", None) == "torch"

    def dump(self, estimator: Any, trusted: Iterable[str] = ()) -> Serialized:
        return Serialized(dump(estimator), self.name)

    def verify(self, data: bytes, where: str) -> None:
        verify(data, where)

    def load(self, data: bytes, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None) -> Any:
        # the layout is checked before anything else and a pickle reported by verify itself:
        # a header length can begin with the bytes of a pickle PROTO opcode
        verify(data, where)
        if estimator is None:
            raise ConfigError(
                f"{where} holds torch weights only; loading it needs the model's definition, whose st.TorchEstimator builds the network",
                hint="declare the model in definitions.py (or pass its definition when loading)",
            )
        return load(data, estimator, where)

    def to_onnx(self, native: Any, signature: Mapping[str, Any]) -> Any:
        return to_onnx(native, signature)


def to_onnx(estimator: Any, signature: Mapping[str, Any]) -> Any:
    """The fitted network with what :class:`~strataml.models._torch_adapter.TorchEstimator`
    does around it (missing values to the training mean, standardisation, the output head:
    sigmoid, softmax or the target's de-standardisation) folded into one graph that takes
    the raw feature matrix (float64, in signature order) with a dynamic batch dimension."""
    import logging

    import torch

    if not isinstance(estimator, TorchEstimator):
        raise ExportRefused(f"a torch-format version holds a {type(estimator).__name__}, not a TorchEstimator")
    try:
        import onnxscript  # noqa: F401  (torch.onnx.export's exporter is written in it)
    except ImportError as exc:
        raise MissingExtra("onnxscript", "onnx", "exporting PyTorch models to ONNX") from exc
    n = float_inputs(signature, "this PyTorch model")
    names = [i["name"] for i in signature["inputs"]]
    fitted = list(estimator.feature_names_in_)
    if names != fitted:
        raise ExportRefused(f"the model's signature inputs {names} are not the network's inputs {fitted}, in order")
    wrapper = _torch_graph(torch, estimator).eval()
    example = torch.zeros((2, n), dtype=torch.float64)
    # the exporter logs a warning per torchvision operator it cannot register, and warns
    # about its own internals: nothing a user can act on
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                input_names=["input"],
                output_names=["variable" if estimator.loss == "mse" else "probabilities"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=18,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    finally:
        log.setLevel(level)
    assert program is not None  # dynamo=True without a file name returns the program
    proto = program.model_proto
    # the exporter records Python stack traces and source paths per node: not part of the
    # model, and they would make the bytes depend on where strataml is installed
    proto.ClearField("doc_string")
    proto.ClearField("metadata_props")
    for node in proto.graph.node:
        node.ClearField("doc_string")
        node.ClearField("metadata_props")
    proto.graph.ClearField("value_info")
    return proto


def _torch_graph(torch: Any, est: Any) -> Any:
    """The module exported for a fitted TorchEstimator (a class defined here so that
    importing this module does not import torch)."""
    params = list(est.module_.parameters())
    dtype = params[0].dtype if params else torch.float32

    class Exported(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = est.module_
            self.register_buffer("mean", torch.tensor(est.mean_, dtype=torch.float64))
            self.register_buffer("scale", torch.tensor(est.scale_, dtype=torch.float64))

        def forward(self, x: Any) -> Any:
            x = torch.where(torch.isnan(x), self.mean, x)
            if est.standardize:
                x = (x - self.mean) / self.scale
            out = self.net(x.to(dtype))
            if est.loss == "bce":
                p = torch.sigmoid(out).reshape(-1, 1)
                return torch.cat([1.0 - p, p], dim=1)
            if est.loss == "cross_entropy":
                return torch.softmax(out, dim=1)
            return out.reshape(-1).to(torch.float64) * float(est.target_scale_) + float(est.target_mean_)

    return Exported()
