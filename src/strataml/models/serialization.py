"""Safe model formats: no pickle, ever.

- LightGBM models are stored in LightGBM's own text format (the booster dump).
- XGBoost models in XGBoost's own JSON format (:mod:`strataml.models.xgboost_format`).
- PyTorch networks (``st.TorchEstimator``) as safetensors weights plus a JSON header;
  the network itself is rebuilt from the model's definition at load time
  (:mod:`strataml.models.torch_format`).
- scikit-learn estimators and pipelines through skops, whose files describe objects
  as data. The types a file needs beyond skops' built-in safe set are fixed when it
  is saved (only types from the allowed library modules, plus any the model's
  definition trusts explicitly) and recorded next to the version; a load refuses a
  file that names any type outside that record.

Artifacts are written canonically (fixed zip timestamps, stable object ids), so the
same fitted model always produces the same bytes and therefore the same sha256.
Loading starts from bytes that the artifact store has already verified against their
hash; anything that looks like a pickle stream is refused before any parser sees it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from strataml.errors import ConfigError
from strataml.errors import UnsafeModel as UnsafeModel  # re-exported: where model formats are
from strataml.models.pickle_guard import refuse_pickle as refuse_pickle

#: modules whose types a skops file may name without an explicit trust entry
SAFE_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lightgbm.")
FORMATS = ("lightgbm", "skops", "xgboost", "torch", "onnx")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Serialized:
    """A model's canonical bytes, their format and the types the file needs trusted."""

    data: bytes
    format: str
    trusted_types: list[str] = field(default_factory=list)


def flavor(estimator: Any) -> str:
    """Which format an estimator is saved in: ``lightgbm``, ``xgboost``, ``torch`` or ``skops``."""
    module = type(estimator).__module__
    if module.startswith("lightgbm"):
        return "lightgbm"
    if module.startswith("xgboost"):
        return "xgboost"
    if getattr(type(estimator), "__strata_format__", None) == "torch":
        return "torch"
    if module.startswith("sklearn") or hasattr(estimator, "get_params"):
        return "skops"
    raise UnsafeModel(
        f"cannot save a {type(estimator).__module__}.{type(estimator).__name__} safely",
        hint="use a scikit-learn estimator or pipeline, a LightGBM or XGBoost model, or st.TorchEstimator",
    )


# --- saving ----------------------------------------------------------------------------


def dump(estimator: Any, *, trusted: Iterable[str] = ()) -> Serialized:
    """Serialise a fitted estimator to canonical bytes in its safe format."""
    kind = flavor(estimator)
    if kind == "lightgbm":
        booster = estimator.booster_ if hasattr(estimator, "booster_") else estimator
        return Serialized(booster.model_to_string().encode("utf-8"), "lightgbm")
    if kind == "xgboost":
        from strataml.models import xgboost_format

        return Serialized(xgboost_format.dump(estimator), "xgboost")
    if kind == "torch":
        from strataml.models import torch_format

        return Serialized(torch_format.dump(estimator), "torch")
    return _dump_skops(estimator, set(trusted))


def _dump_skops(estimator: Any, trusted: set[str]) -> Serialized:
    import skops.io as sio

    try:
        raw = sio.dumps(estimator)
    except Exception as exc:
        raise UnsafeModel(f"skops cannot describe {type(estimator).__name__}: {exc}", hint="use estimators from scikit-learn") from exc
    needed = sorted(sio.get_untrusted_types(data=raw))
    refused = [t for t in needed if not t.startswith(SAFE_MODULE_PREFIXES) and t not in trusted]
    if refused:
        raise UnsafeModel(
            f"the model needs type(s) outside the trusted libraries: {', '.join(refused)}",
            hint="list them in st.Model(trusted_types=[...]) if you trust that code, or use library estimators",
        )
    return Serialized(canonical_skops(raw), "skops", needed)


def canonical_skops(raw: bytes) -> bytes:
    """Rewrite a skops file so equal models give equal bytes.

    skops names objects by their memory address and binary blobs by random ids, and
    zip entries carry the wall-clock time; this renumbers ids in the order they
    appear, renames the files accordingly and fixes every timestamp.
    """
    with zipfile.ZipFile(io.BytesIO(raw)) as zin:
        schema = json.loads(zin.read("schema.json"))
        blobs = {n: zin.read(n) for n in zin.namelist() if n != "schema.json"}
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                if k == "__id__" and isinstance(v, int):
                    out[k] = ids.setdefault(v, len(ids) + 1)
                elif k == "file" and isinstance(v, str) and v in blobs:
                    if v not in files:
                        files[v] = f"{len(files) + 1:06d}{v[v.rfind('.'):] if '.' in v else ''}"
                    out[k] = files[v]
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    fixed = walk(schema)
    unreferenced = sorted(set(blobs) - set(files))
    if unreferenced:
        raise UnsafeModel(f"skops file holds entries its schema does not reference: {unreferenced[:3]}")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zout:
        for old, new in sorted(files.items(), key=lambda kv: kv[1]):
            zout.writestr(zipfile.ZipInfo(new, _FIXED_TIME), blobs[old])
        zout.writestr(zipfile.ZipInfo("schema.json", _FIXED_TIME), json.dumps(fixed, indent=2, sort_keys=False))
    return out.getvalue()


# --- loading ---------------------------------------------------------------------------


def load(
    data: bytes, fmt: str, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None
) -> Any:
    """Rebuild a model from verified bytes: a LightGBM booster, a skops estimator, an
    XGBoost model, a fitted ``TorchEstimator`` or an ONNX session.

    ``estimator`` is the model's unfitted estimator from its definition; a torch
    artifact holds weights only and needs it to rebuild the network.
    """
    if fmt == "torch":
        # the torch loader checks the safetensors layout before anything else and reports
        # a pickle itself: a header length can begin with the bytes of a pickle PROTO opcode
        return _load_torch(data, estimator, where)
    refuse_pickle(data, where)
    if fmt == "lightgbm":
        return _load_lightgbm(data, where)
    if fmt == "skops":
        return _load_skops(data, set(trusted_types), where)
    if fmt == "xgboost":
        from strataml.models import xgboost_format

        return xgboost_format.load(data, where)
    if fmt == "onnx":
        from strataml.models.onnx_runtime import load_onnx

        return load_onnx(data, where)
    raise UnsafeModel(f"{where} has format {fmt!r}, which strataml does not load", hint=f"supported formats: {', '.join(FORMATS)}")


def _load_torch(data: bytes, estimator: Any, where: str) -> Any:
    from strataml.models import torch_format

    torch_format.verify(data, where)
    if estimator is None:
        raise ConfigError(
            f"{where} holds torch weights only; loading it needs the model's definition, whose st.TorchEstimator builds the network",
            hint="declare the model in definitions.py (or pass its definition when loading)",
        )
    return torch_format.load(data, estimator, where)


_LGB_HEAD = re.compile(rb"^tree\r?\nversion=v\d+\r?\n")


def _load_lightgbm(data: bytes, where: str) -> Any:
    import lightgbm as lgb

    if not _LGB_HEAD.match(data[:64]):
        raise UnsafeModel(f"{where} is not a LightGBM text model (it does not start with 'tree/version=')")
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except Exception as exc:
        raise UnsafeModel(f"{where} is not a valid LightGBM model: {exc}") from exc


def _load_skops(data: bytes, trusted: set[str], where: str) -> Any:
    import skops.io as sio

    try:
        needed = set(sio.get_untrusted_types(data=data))
    except Exception as exc:
        raise UnsafeModel(f"{where} is not a readable skops file: {exc}") from exc
    outside = sorted(t for t in needed if t not in trusted)
    if outside:
        raise UnsafeModel(
            f"{where} names type(s) that were not trusted when it was saved: {', '.join(outside)}; it is refused",
            hint="the file was altered or comes from elsewhere; re-create the model with 'strata train'",
        )
    try:
        return sio.loads(data, trusted=sorted(needed))
    except Exception as exc:
        raise UnsafeModel(f"{where} could not be loaded by skops: {exc}") from exc
