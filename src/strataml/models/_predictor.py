"""Signatures and prediction: one code path turns rows into model inputs, for training,
evaluation, tuning, batch scoring and online serving alike.

A signature lists the input features (name and type, in order) and the output: its
kind (``binary``, ``multiclass``, ``regression``) and, for classifiers, the class
labels. :func:`prepare` turns an Arrow table, a pandas frame or a list of records
into exactly the frame the model was trained on; :class:`Predictor` returns the
positive-class probability for a binary classifier, a class → probability mapping
per row for a multiclass one, and the value for a regressor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from strataml.errors import ConfigError, StrataError
from strataml.models._serialization import Serialized, load
from strataml.models.formats import FORMATS as _FORMATS
from strataml.models.formats import ModelFormat, get_format


class SignatureError(StrataError):
    """Input rows do not match the model's signature."""


def arrow_kind(t: pa.DataType) -> str | None:
    """The signature type of an Arrow type (None when a model cannot take it as input)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return None


def input_schema(table: pa.Table, columns: Sequence[str]) -> list[dict[str, str]]:
    """``[{"name", "type"}]`` for the chosen input columns; a clear error for unusable ones."""
    out = []
    for c in columns:
        if c not in table.column_names:
            raise ConfigError(f"input column {c!r} is not in the training data (columns: {', '.join(table.column_names)})")
        kind = arrow_kind(table.schema.field(c).type)
        if kind is None:
            raise ConfigError(
                f"input column {c!r} has type {table.schema.field(c).type}, which a model cannot take",
                hint="use numeric, boolean or string columns (derive numbers from timestamps in a feature view)",
            )
        out.append({"name": c, "type": kind})
    return out


def output_kind(estimator: Any, y: np.ndarray) -> tuple[str, list[Any]]:
    """``("binary"|"multiclass", classes)`` for a classifier, ``("regression", [])`` otherwise."""
    from sklearn.base import is_classifier

    if is_classifier(estimator):
        classes = sorted(pd.unique(pd.Series(y).dropna()).tolist())
        if len(classes) < 2:
            raise ConfigError(f"the target has a single class ({classes}); a classifier needs at least two")
        return ("binary" if len(classes) == 2 else "multiclass"), [_plain(c) for c in classes]
    return "regression", []


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def prepare(rows: Any, signature: Mapping[str, Any], fmt: str | ModelFormat) -> pd.DataFrame:
    """The model's input frame from an Arrow table, a pandas frame, a mapping of columns or records
    (``fmt``: the format's name, or the format itself when it is not registered)."""
    inputs = signature["inputs"]
    categorical = fmt in _CATEGORICAL if isinstance(fmt, str) else fmt.categorical
    names = [i["name"] for i in inputs]
    if isinstance(rows, pa.Table):
        missing = [n for n in names if n not in rows.column_names]
        if missing:
            raise SignatureError(f"input is missing feature(s) {missing}", hint=f"the model takes {names}")
        frame = rows.select(names).to_pandas()
    elif isinstance(rows, pd.DataFrame):
        missing = [n for n in names if n not in rows.columns]
        if missing:
            raise SignatureError(f"input is missing feature(s) {missing}", hint=f"the model takes {names}")
        frame = rows[names].copy()
    elif isinstance(rows, Mapping):
        return prepare(pd.DataFrame({n: rows.get(n) for n in names}), signature, fmt)
    elif isinstance(rows, Sequence) and all(isinstance(r, Mapping) for r in rows):
        return prepare(pd.DataFrame.from_records([{n: r.get(n) for n in names} for r in rows], columns=names), signature, fmt)
    else:
        raise SignatureError(f"cannot predict on a {type(rows).__name__}", hint="pass a pyarrow Table, a pandas DataFrame or a list of records")
    for spec in inputs:
        n, kind = spec["name"], spec["type"]
        col = frame[n]
        try:
            if kind in ("int", "float"):
                frame[n] = pd.to_numeric(col, errors="raise").astype("float64")
            elif kind == "bool":
                frame[n] = col.astype("float64")
            elif categorical:
                frame[n] = col.astype("category")
            else:
                frame[n] = col.astype(object).where(col.notna(), None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"feature {n!r} should be {kind}: {exc}") from None
    return frame


#: the formats whose models take string inputs as pandas categories
_CATEGORICAL = frozenset(f.name for f in _FORMATS.values() if f.categorical)


class Predictor:
    """A loaded model: native object, format and signature."""

    def __init__(self, native: Any, fmt: str, signature: Mapping[str, Any], threads: int | None = None) -> None:
        self.native = native
        self.threads = threads
        self.format = fmt
        self._format = get_format(fmt)
        self.signature = dict(signature)
        self.kind: str = self.signature["output"]["kind"]
        self.classes: list[Any] = list(self.signature["output"].get("classes") or [])

    @classmethod
    def from_serialized(
        cls, ser: Serialized, signature: Mapping[str, Any], where: str = "model artifact", estimator: Any = None
    ) -> Predictor:
        """Rebuild from canonical bytes (what the registry stores).

        ``estimator`` is the model's estimator from its definition, needed by formats
        that store weights only (torch).
        """
        native = load(ser.data, ser.format, trusted_types=ser.trusted_types, where=where, estimator=estimator)
        return cls(native, ser.format, signature)

    def predict_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw outputs for a prepared frame: positive-class probabilities, a probability matrix or values."""
        if len(frame) == 0:
            return np.empty((0, len(self.classes))) if self.kind == "multiclass" else np.empty(0)
        return self._format.predict_matrix(self.native, frame, self.kind, self.classes, self.threads)

    def predict(self, rows: Any) -> Any:
        """Predictions for rows: an ndarray (binary, regression) or a list of class → probability dicts."""
        out = self.predict_matrix(prepare(rows, self.signature, self.format))
        if self.kind == "multiclass":
            return [dict(zip(self.classes, map(float, r), strict=True)) for r in out]
        return out
