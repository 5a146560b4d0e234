"""XGBoost models, stored in XGBoost's own JSON format.

A fitted ``XGBClassifier``/``XGBRegressor`` is saved as its booster's JSON model
(``Booster.save_raw("json")``): plain data, and the same for the same data and seed.
Loading checks that the bytes are an XGBoost JSON model (a JSON object holding a
``learner`` and a ``version``, with an objective strataml knows how to read) before
XGBoost's parser sees them.

String inputs reach XGBoost as pandas categories (the model is fitted with
``enable_categorical``). The model file records each categorical input's training
categories; at prediction every categorical column is laid out on exactly those
categories, so codes always mean what they meant in training and a value never seen
in training is treated as missing rather than failing the request.

Classifier labels are fitted as their index in the signature's sorted class list, so
probability columns come back in the signature's order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from strataml.errors import MissingExtra, UnsafeModel
from strataml.models._pickle_guard import refuse_pickle
from strataml.models.formats._base import EstimatorFormat, Serialized, float_inputs

#: the objectives whose predictions a classifier's probabilities are read from
CLASSIFIER_OBJECTIVES = ("binary:logistic", "multi:softprob")


def _xgb(purpose: str) -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MissingExtra("xgboost", "xgboost", purpose) from exc
    return xgboost


def is_xgboost(estimator: Any) -> bool:
    """Whether an estimator is an XGBoost model (sklearn wrapper or booster)."""
    return type(estimator).__module__.startswith("xgboost")


def encode_target(y: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Class labels as their index in ``classes`` (XGBoost classifiers need 0..k-1)."""
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray(
        [index[v.item() if isinstance(v, np.generic) else v] for v in y], dtype=np.int64
    )


def booster_of(estimator: Any) -> Any:
    """The fitted booster behind an XGBoost estimator."""
    return estimator.get_booster() if hasattr(estimator, "get_booster") else estimator


def dump(estimator: Any) -> bytes:
    """The fitted model's canonical JSON bytes."""
    from sklearn.base import is_classifier

    raw = bytes(booster_of(estimator).save_raw(raw_format="json"))
    objective = verify(raw, "the new XGBoost model")
    if is_classifier(estimator) and objective not in CLASSIFIER_OBJECTIVES:
        raise UnsafeModel(
            f"an XGBoost classifier with objective {objective!r} gives no class probabilities",
            hint="leave the objective at its default (binary:logistic or multi:softprob)",
        )
    return raw


def verify(data: bytes, where: str) -> str:
    """Check that ``data`` is an XGBoost JSON model before XGBoost parses it; returns its objective."""
    if not data.lstrip()[:1] == b"{":
        raise UnsafeModel(
            f"{where} is not an XGBoost JSON model (it does not start with a JSON object)",
            hint="strataml stores XGBoost models as Booster.save_raw('json'); re-create it with 'strata train'",
        )
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsafeModel(f"{where} is not an XGBoost JSON model: {exc}") from None
    learner = doc.get("learner") if isinstance(doc, dict) else None
    version = doc.get("version") if isinstance(doc, dict) else None
    if (
        not isinstance(learner, dict)
        or not isinstance(version, list)
        or len(version) != 3
        or not all(isinstance(v, int) for v in version)
    ):
        raise UnsafeModel(f"{where} is not an XGBoost JSON model (it lacks 'learner' and 'version')")
    objective = learner.get("objective")
    name = objective.get("name") if isinstance(objective, dict) else None
    if not isinstance(name, str) or "gradient_booster" not in learner:
        raise UnsafeModel(f"{where} is not an XGBoost JSON model (no objective or booster)")
    if name.startswith(("rank:", "multi:softmax")):
        raise UnsafeModel(
            f"{where} has objective {name!r}, which strataml does not serve",
            hint="use binary:logistic or multi:softprob for classifiers, a reg:* objective for regressors",
        )
    return name


class XGBoostModel:
    """A loaded XGBoost booster with the scikit-learn style ``predict``/``predict_proba``.

    Probability columns follow the class order the model was fitted with (the
    signature's sorted classes). Batches below ``SMALL_BATCH`` rows run on one thread
    (waking a thread pool costs far more than a few rows); larger ones on a copy of the
    booster that uses every core, made on first use.
    """

    SMALL_BATCH = 2_000

    def __init__(self, booster: Any, objective: str) -> None:
        booster.set_param({"nthread": 1})
        self.booster = booster
        self._wide: Any = None
        self._lock = threading.Lock()
        self.objective = objective
        self.categories: dict[str, list[Any]] = {}
        names = list(booster.feature_names or [])
        types = list(booster.feature_types or [])
        if "c" in types:
            for name, values in booster.get_categories(export_to_arrow=True).to_arrow():
                if values is not None:
                    self.categories[str(name)] = values.to_pylist()
        self.feature_names = names

    def __getstate__(self) -> dict[str, Any]:
        # shipped to Ray workers for batch scoring: the lock and the wide copy stay behind
        return {**self.__dict__, "_lock": None, "_wide": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.booster.set_param({"nthread": 1})

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.categories:
            return frame
        out = frame.copy()
        for name, cats in self.categories.items():
            if name in out.columns:
                values = out[name].astype(object)
                out[name] = pd.Categorical(values.where(values.isin(cats), None), categories=cats)
        return out

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        booster = self.booster
        if len(frame) >= self.SMALL_BATCH:
            with self._lock:
                if self._wide is None:
                    wide = self.booster.copy()
                    wide.set_param({"nthread": 0})
                    self._wide = wide
            booster = self._wide
        return np.asarray(booster.inplace_predict(self._frame(frame)), dtype="float64")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Values for a regressor; class indices for a classifier."""
        out = self._raw(frame)
        if self.objective == "binary:logistic":
            return (out > 0.5).astype(np.int64)
        if self.objective == "multi:softprob":
            return np.asarray(np.argmax(out, axis=1))
        return out

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class in the fitted order."""
        out = self._raw(frame)
        if self.objective == "binary:logistic":
            return np.column_stack([1.0 - out, out])
        if self.objective == "multi:softprob":
            # float32 probabilities from XGBoost sum to one only to float32 precision
            return np.asarray(out / out.sum(axis=1, keepdims=True))
        raise UnsafeModel(
            f"an XGBoost model with objective {self.objective!r} gives no class probabilities"
        )


def native(estimator: Any) -> XGBoostModel:
    """A predictor-ready model over a just-fitted estimator (no serialisation), for tuning trials."""
    booster = booster_of(estimator).copy()
    return XGBoostModel(booster, json.loads(booster.save_config())["learner"]["objective"]["name"])


def load(data: bytes, where: str) -> XGBoostModel:
    """Rebuild a model from verified JSON bytes."""
    objective = verify(data, where)
    xgb = _xgb("loading an XGBoost model")
    try:
        booster = xgb.Booster()
        booster.load_model(bytearray(data))
    except Exception as exc:
        raise UnsafeModel(f"{where} is not a valid XGBoost model: {exc}") from exc
    return XGBoostModel(booster, objective)


class XGBoostFormat(EstimatorFormat):
    """XGBoost models in XGBoost's own JSON format."""

    name = "xgboost"
    extra: str | None = "xgboost"
    categorical = True
    onnx_packages: tuple[str, ...] = ("onnxmltools",)

    def claims(self, estimator: Any) -> bool:
        return is_xgboost(estimator)

    def configure(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # string inputs arrive as pandas categories; the flag changes nothing without them
        return {"enable_categorical": True} if params.get("enable_categorical") is False else {}

    def fit_target(self, y: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
        return encode_target(y, classes) if classes else y

    def dump(self, estimator: Any, trusted: Iterable[str] = ()) -> Serialized:
        return Serialized(dump(estimator), self.name)

    def verify(self, data: bytes, where: str) -> None:
        refuse_pickle(data, where)
        verify(data, where)

    def load(self, data: bytes, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None) -> Any:
        refuse_pickle(data, where)
        return load(data, where)

    def native(self, estimator: Any) -> Any:
        return native(estimator)

    def to_onnx(self, native: Any, signature: Mapping[str, Any]) -> Any:
        """The booster through onnxmltools (numeric inputs, one float matrix, in signature order)."""
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        n = float_inputs(signature, "this XGBoost model")
        booster = (native.booster if isinstance(native, XGBoostModel) else booster_of(native)).copy()
        booster.feature_names = None  # the converter reads features as f0, f1…, in signature order
        booster.feature_types = None
        return convert_xgboost(booster, initial_types=[("input", FloatTensorType([None, n]))], target_opset=15)
