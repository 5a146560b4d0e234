"""ONNX exports as a loadable format: the graph is vetted (:mod:`strataml.models._onnx_runtime`)
and run by onnxruntime. Nothing is trained in it, so it claims no estimator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from strataml.errors import UnsafeModel
from strataml.models._pickle_guard import refuse_pickle
from strataml.models.formats._base import EstimatorFormat, Serialized


class OnnxFormat(EstimatorFormat):
    """An ONNX graph run by onnxruntime (what ``strata export`` writes)."""

    name = "onnx"
    extra: str | None = "onnx"

    def claims(self, estimator: Any) -> bool:
        return False

    def dump(self, estimator: Any, trusted: Iterable[str] = ()) -> Serialized:
        raise UnsafeModel("an ONNX model is written by 'strata export', not saved from an estimator")

    def verify(self, data: bytes, where: str) -> None:
        from strataml.models._onnx_runtime import check_onnx

        refuse_pickle(data, where)
        check_onnx(data, where)

    def load(self, data: bytes, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None) -> Any:
        from strataml.models._onnx_runtime import load_onnx

        refuse_pickle(data, where)
        return load_onnx(data, where)

    def predict_matrix(self, native: Any, frame: pd.DataFrame, kind: str, classes: list[Any], threads: int | None) -> np.ndarray:
        return np.asarray(native.predict_matrix(frame, kind, classes))
