"""The safe (pickle-free) model formats and their registry.

Each format is one module implementing :class:`~strataml.models.formats._base.ModelFormat`;
adding a format is its module plus one line in :data:`FORMATS`. An estimator is saved in
the first format (in registry order) that claims it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strataml.errors import UnsafeModel
from strataml.models.formats._base import ModelFormat, RowsFn, Serialized
from strataml.models.formats._lightgbm import LightGBMFormat
from strataml.models.formats._onnx import OnnxFormat
from strataml.models.formats._skops import SkopsFormat
from strataml.models.formats._torch import TorchFormat
from strataml.models.formats._xgboost import XGBoostFormat

_ORDER: tuple[ModelFormat, ...] = (
    LightGBMFormat(),
    XGBoostFormat(),
    TorchFormat(),
    SkopsFormat(),  # after the others: it claims anything with get_params
    OnnxFormat(),
)
#: registered formats by name, in the order they are asked to claim an estimator
FORMATS: dict[str, ModelFormat] = {f.name: f for f in _ORDER}


def get_format(name: str, where: str = "model artifact") -> ModelFormat:
    """The registered format called ``name`` (a clear refusal for any other)."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise UnsafeModel(f"{where} has format {name!r}, which strataml does not load", hint=f"supported formats: {', '.join(FORMATS)}")
    return fmt


def format_of(estimator: Any) -> ModelFormat:
    """The format an estimator is saved in."""
    for fmt in FORMATS.values():
        if fmt.claims(estimator):
            return fmt
    raise UnsafeModel(
        f"cannot save a {type(estimator).__module__}.{type(estimator).__name__} safely",
        hint="use a scikit-learn estimator or pipeline, a LightGBM or XGBoost model, or st.TorchEstimator",
    )




def row_predictor(loaded: Any, feats: Sequence[Any], generic: RowsFn) -> RowsFn | None:
    """A loaded model's fast predictor for a few records (its format's, verified to answer
    like ``generic``), or None where its format has none."""
    fmt = FORMATS.get(getattr(loaded, "format", None) or "")
    return None if fmt is None else fmt.row_predictor(loaded, feats, generic)


__all__ = ["FORMATS", "ModelFormat", "Serialized", "format_of", "get_format", "row_predictor"]
