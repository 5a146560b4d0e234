"""Fitting helpers shared by training and tuning: the prepared frames, a configured copy
of an estimator, the fit, and holdout metrics of a predictor.

A leaf of :mod:`strataml.models.train` and :mod:`strataml.models._tuning`, so neither
imports the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from strataml.models._metrics import compute
from strataml.models._predictor import Predictor
from strataml.models.formats import format_of, get_format
from strataml.spine import user_code


@dataclass
class Prepared:
    """Model-ready train and holdout frames plus the signature they follow."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_hold: pd.DataFrame
    y_hold: np.ndarray
    hold_table: pa.Table
    signature: dict[str, Any]
    fmt: str
    train_index: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def kind(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        return str(self.signature["output"]["kind"])

    @property
    def classes(self) -> list[Any]:
        """Class labels (classifiers)."""
        return list(self.signature["output"].get("classes") or [])


def configure(estimator: Any, params: dict[str, Any], seed: int) -> Any:
    """A fresh, unfitted copy of the estimator with ``params`` applied and every unset seed set."""
    from sklearn.base import clone

    est = clone(estimator)
    if params:
        est.set_params(**params)
    current = est.get_params(deep=True)
    extra: dict[str, Any] = {k: seed for k, v in current.items() if (k == "random_state" or k.endswith("__random_state")) and v is None}
    extra.update(format_of(est).configure(current))
    if extra:
        est.set_params(**extra)
    return est


def scalar_params(estimator: Any) -> dict[str, Any]:
    """The estimator's parameters that are plain values (nested estimators are named by class)."""
    out: dict[str, Any] = {"estimator": f"{type(estimator).__module__}.{type(estimator).__name__}"}
    for k, v in sorted(estimator.get_params(deep=True).items()):
        if v is None or isinstance(v, bool | int | float | str):
            out[k] = v
    return out


def fit_target(y: np.ndarray, fmt: str, signature: dict[str, Any]) -> np.ndarray:
    """The target as the estimator is fitted on it: XGBoost classifiers take class indices
    (0..k-1, in the signature's class order)."""
    classes = signature["output"].get("classes") or []
    return get_format(fmt).fit_target(y, classes)


def fit(estimator: Any, prepared: Prepared, model_name: str) -> Any:
    """Fit inside the user-code boundary (the original traceback is kept)."""
    y = fit_target(prepared.y_train, prepared.fmt, prepared.signature)
    with user_code(
        f"model {model_name!r}: {type(estimator).__name__}.fit",
        hint="string inputs need an encoder in a scikit-learn pipeline (LightGBM and XGBoost take them as categories)",
    ):
        return estimator.fit(prepared.x_train, y)


def evaluate(predictor: Predictor, prepared: Prepared, metrics: list[str], x: pd.DataFrame | None = None,
             y: np.ndarray | None = None) -> dict[str, float]:
    """Holdout metrics of a predictor (positive class = the second class label of a binary model)."""
    x = prepared.x_hold if x is None else x
    y = prepared.y_hold if y is None else y
    pred = predictor.predict_matrix(x)
    if prepared.kind == "binary":
        y = (y == prepared.classes[1]).astype(np.int64)
    return compute(metrics, prepared.kind, y, pred, prepared.classes)


def native_predictor(estimator: Any, prepared: Prepared) -> Predictor:
    """A predictor over a just-fitted estimator (no serialisation), for tuning trials."""
    native = get_format(prepared.fmt).native(estimator)
    return Predictor(native, prepared.fmt, prepared.signature, threads=threads_of(estimator))


def threads_of(estimator: Any) -> int | None:
    """The thread count the estimator was configured with (evaluation uses the same)."""
    n = estimator.get_params().get("n_jobs") if hasattr(estimator, "get_params") else None
    return int(n) if isinstance(n, int) and n > 0 else None
