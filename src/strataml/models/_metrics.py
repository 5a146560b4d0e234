"""Holdout metrics by name, with their direction and the kinds of model they fit.

Predictions arrive as the registry serves them: the positive-class probability for a
binary classifier, a probability matrix (one column per class) for a multiclass
classifier, and the value for a regressor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from strataml.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    """One metric: how to compute it, whether higher is better, which outputs it fits."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray, Sequence[Any]], float]
    higher_is_better: bool
    kinds: tuple[str, ...]


def _auc(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    from sklearn.metrics import roc_auc_score

    if p.ndim == 2:
        return float(roc_auc_score(y, p, multi_class="ovr", labels=list(classes)))
    return float(roc_auc_score(y, p))


def _pr_auc(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


def _log_loss(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    from sklearn.metrics import log_loss

    if p.ndim == 2:
        return float(log_loss(y, p, labels=list(classes)))
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


def _labels(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    if p.ndim == 2:
        labels: np.ndarray = np.asarray(classes)[np.argmax(p, axis=1)]
        return labels
    return (p >= 0.5).astype(y.dtype if y.dtype.kind in "iub" else np.int64)


def _accuracy(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    return float(np.mean(_labels(y, p, classes) == y))


def _f1(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, _labels(y, p, classes), average="binary" if p.ndim == 1 else "macro", zero_division=0))


def _precision(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(y, _labels(y, p, classes), zero_division=0))


def _recall(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(y, _labels(y, p, classes), zero_division=0))


def _rmse(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    return float(np.sqrt(np.mean((y.astype(float) - p) ** 2)))


def _mse(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    return float(np.mean((y.astype(float) - p) ** 2))


def _mae(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    return float(np.mean(np.abs(y.astype(float) - p)))


def _r2(y: np.ndarray, p: np.ndarray, classes: Sequence[Any]) -> float:
    yf = y.astype(float)
    ss = float(np.sum((yf - yf.mean()) ** 2))
    return float(1.0 - np.sum((yf - p) ** 2) / ss) if ss > 0 else 0.0


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", _auc, True, ("binary", "multiclass")),
        Metric("pr_auc", _pr_auc, True, ("binary",)),
        Metric("log_loss", _log_loss, False, ("binary", "multiclass")),
        Metric("accuracy", _accuracy, True, ("binary", "multiclass")),
        Metric("f1", _f1, True, ("binary", "multiclass")),
        Metric("precision", _precision, True, ("binary",)),
        Metric("recall", _recall, True, ("binary",)),
        Metric("rmse", _rmse, False, ("regression",)),
        Metric("mse", _mse, False, ("regression",)),
        Metric("mae", _mae, False, ("regression",)),
        Metric("r2", _r2, True, ("regression",)),
    )
}

DEFAULT_METRICS = {
    "binary": ["roc_auc", "log_loss", "accuracy"],
    "multiclass": ["accuracy", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the metric is better."""
    return METRICS[name].higher_is_better


def compute(names: Sequence[str], kind: str, y: np.ndarray, pred: np.ndarray, classes: Sequence[Any]) -> dict[str, float]:
    """Every named metric for one set of predictions."""
    out: dict[str, float] = {}
    for name in names:
        m = METRICS[name]
        if kind not in m.kinds:
            raise ConfigError(f"metric {name!r} does not apply to a {kind} model", hint=f"for {kind} use one of {', '.join(k for k, v in METRICS.items() if kind in v.kinds)}")
        out[name] = m.fn(y, pred, classes)
    return out
