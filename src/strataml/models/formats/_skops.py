"""scikit-learn estimators and pipelines through skops, whose files describe objects as
data. The types a file needs beyond skops' built-in safe set are fixed when it is saved
(only types from the allowed library modules, plus any the model's definition trusts
explicitly) and recorded next to the version; a load refuses a file that names any
type outside that record. Files are written canonically (fixed zip timestamps, stable
object ids), so the same fitted model always gives the same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from strataml.errors import UnsafeModel
from strataml.models._pickle_guard import refuse_pickle
from strataml.models.formats._base import ONNX_OPSET, EstimatorFormat, Serialized

#: modules whose types a skops file may name without an explicit trust entry
SAFE_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lightgbm.")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class SkopsFormat(EstimatorFormat):
    """scikit-learn estimators and pipelines (anything with ``get_params``) as skops files."""

    name = "skops"
    onnx_packages: tuple[str, ...] = ("skl2onnx",)

    def claims(self, estimator: Any) -> bool:
        return type(estimator).__module__.startswith("sklearn") or hasattr(estimator, "get_params")

    def dump(self, estimator: Any, trusted: Iterable[str] = ()) -> Serialized:
        return _dump_skops(estimator, set(trusted))

    def verify(self, data: bytes, where: str) -> None:
        refuse_pickle(data, where)
        import skops.io as sio

        try:
            sio.get_untrusted_types(data=data)
        except Exception as exc:
            raise UnsafeModel(f"{where} is not a readable skops file: {exc}") from exc

    def load(self, data: bytes, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None) -> Any:
        refuse_pickle(data, where)
        return _load_skops(data, set(trusted_types), where)

    def to_onnx(self, native: Any, signature: Mapping[str, Any]) -> Any:
        """The estimator through skl2onnx: one float matrix, or one input per column when
        it selects columns by name or takes strings (probabilities without a ZipMap)."""
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
        from sklearn.base import is_classifier

        inputs = signature["inputs"]
        if _named_columns(native) or any(i["type"] == "string" for i in inputs):
            types: list[tuple[str, Any]] = [
                (i["name"], StringTensorType([None, 1]) if i["type"] == "string" else FloatTensorType([None, 1]))
                for i in inputs
            ]
        else:
            types = [("input", FloatTensorType([None, len(inputs)]))]
        options: dict[Any, Any] = {}
        if is_classifier(native):
            options = {id(native): {"zipmap": False}}
        return convert_sklearn(native, initial_types=types, options=options, target_opset=ONNX_OPSET)


def _named_columns(estimator: Any) -> bool:
    """Whether the estimator selects columns by name (a ColumnTransformer up front)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(first, ColumnTransformer)


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
