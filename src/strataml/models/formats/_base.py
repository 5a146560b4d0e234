"""The interface every model format implements, and the shared pieces of it.

A format claims the fitted estimators it stores (:meth:`ModelFormat.claims`), turns one
into canonical bytes (``dump``: the same model always gives the same bytes), checks
bytes before any parser trusts them (``verify``), rebuilds the prediction object from
verified bytes (``load``), predicts a prepared frame (``predict_matrix``), may offer a
faster predictor for a few rows (``row_predictor``) and may convert to ONNX
(``to_onnx``). The registry in :mod:`strataml.models.formats` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from strataml.errors import StrataError


@dataclass(frozen=True)
class Serialized:
    """A model's canonical bytes, their format and the types the file needs trusted."""

    data: bytes
    format: str
    trusted_types: list[str] = field(default_factory=list)


#: a prediction function over records (the serving path's ``predict_rows``)
RowsFn = Callable[[list[dict[str, Any]]], Any]


class ModelFormat(Protocol):
    """One safe (pickle-free) model format."""

    #: the format's registered name (recorded with every model version)
    name: str
    #: the pip extra that brings its libraries (None: core dependencies)
    extra: str | None
    #: whether string inputs reach the model as pandas categories (else as objects)
    categorical: bool
    #: the packages of its ONNX converter, whose versions an export records (empty: no converter)
    onnx_packages: tuple[str, ...]

    def claims(self, estimator: Any) -> bool:
        """Whether a fitted (or unfitted) estimator is stored in this format."""
        ...

    def configure(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters to add to an estimator with ``params`` so its training is reproducible."""
        ...

    def fit_target(self, y: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
        """The target as the estimator is fitted on it."""
        ...

    def dump(self, estimator: Any, trusted: Iterable[str] = ()) -> Serialized:
        """Canonical bytes of a fitted estimator."""
        ...

    def verify(self, data: bytes, where: str) -> None:
        """Refuse bytes that are not a well-formed file of this format (pickle included)."""
        ...

    def load(self, data: bytes, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None) -> Any:
        """The prediction object from verified bytes (``estimator``: the definition's, for weights-only formats)."""
        ...

    def native(self, estimator: Any) -> Any:
        """The prediction object of a just-fitted estimator (what ``load`` returns for its bytes)."""
        ...

    def predict_matrix(self, native: Any, frame: pd.DataFrame, kind: str, classes: list[Any], threads: int | None) -> np.ndarray:
        """Raw outputs for a prepared, non-empty frame: positive-class probabilities, a probability matrix or values."""
        ...

    def row_predictor(self, loaded: Any, feats: Sequence[Any], generic: RowsFn) -> RowsFn | None:
        """A faster predictor for a few records that answers exactly like ``generic`` (None: none)."""
        ...

    def to_onnx(self, native: Any, signature: Mapping[str, Any]) -> Any:
        """An ``onnx.ModelProto`` of the loaded model (None: the format has no converter);
        :class:`ExportRefused` when the converter cannot express this model."""
        ...


class ExportRefused(StrataError):
    """An export was not stored: its predictions differ too much, or it cannot be made."""


#: the opsets converters target (the default domain and ONNX-ML)
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}


def float_inputs(signature: Mapping[str, Any], what: str) -> int:
    """The number of inputs of a model whose converter takes one float matrix (string inputs refused)."""
    inputs = signature["inputs"]
    strings = [i["name"] for i in inputs if i["type"] == "string"]
    if strings:
        raise ExportRefused(
            f"{what} takes string input(s) {strings}, which its ONNX converter cannot encode as categories",
            hint="export a scikit-learn pipeline that encodes strings (e.g. OneHotEncoder in a ColumnTransformer), "
            "or derive numeric features",
        )
    return len(inputs)


def plain(v: Any) -> Any:
    """A numpy scalar as the Python value."""
    return v.item() if isinstance(v, np.generic) else v


class EstimatorFormat:
    """Defaults for formats whose loaded object is a scikit-learn-style estimator."""

    name = ""
    extra: str | None = None
    categorical = False
    onnx_packages: tuple[str, ...] = ()

    def configure(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def fit_target(self, y: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
        return y

    def native(self, estimator: Any) -> Any:
        return estimator

    def predict_matrix(self, native: Any, frame: pd.DataFrame, kind: str, classes: list[Any], threads: int | None) -> np.ndarray:
        if kind == "regression":
            return np.asarray(native.predict(frame), dtype="float64")
        proba = np.asarray(native.predict_proba(frame), dtype="float64")
        est_classes = [plain(c) for c in getattr(native, "classes_", classes)]
        if est_classes != classes:
            proba = proba[:, [est_classes.index(c) for c in classes]]
        return proba[:, 1] if kind == "binary" else proba

    def row_predictor(self, loaded: Any, feats: Sequence[Any], generic: RowsFn) -> RowsFn | None:
        return None

    def to_onnx(self, native: Any, signature: Mapping[str, Any]) -> Any:
        return None
