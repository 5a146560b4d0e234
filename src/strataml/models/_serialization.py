"""Saving and loading models: no pickle, ever.

Each format (:mod:`strataml.models.formats`: LightGBM's text dump, XGBoost's JSON,
safetensors for ``st.TorchEstimator``, skops for scikit-learn, ONNX exports) writes
canonical bytes, so the same fitted model always produces the same bytes and therefore
the same sha256. Loading starts from bytes that the artifact store has already verified
against their hash; anything that looks like a pickle stream is refused before any
parser sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strataml.errors import UnsafeModel as UnsafeModel  # re-exported: where model formats are
from strataml.models._pickle_guard import refuse_pickle as refuse_pickle
from strataml.models.formats import FORMATS as _REGISTRY
from strataml.models.formats import format_of, get_format
from strataml.models.formats._base import Serialized as Serialized

#: the registered format names
FORMATS = tuple(_REGISTRY)


def flavor(estimator: Any) -> str:
    """Which format an estimator is saved in: ``lightgbm``, ``xgboost``, ``torch`` or ``skops``."""
    return format_of(estimator).name


def dump(estimator: Any, *, trusted: Iterable[str] = ()) -> Serialized:
    """Serialise a fitted estimator to canonical bytes in its safe format."""
    return format_of(estimator).dump(estimator, trusted)


def load(
    data: bytes, fmt: str, *, trusted_types: Iterable[str] = (), where: str = "model artifact", estimator: Any = None
) -> Any:
    """Rebuild a model from verified bytes: a LightGBM booster, a skops estimator, an
    XGBoost model, a fitted ``TorchEstimator`` or an ONNX session.

    ``estimator`` is the model's unfitted estimator from its definition; a torch
    artifact holds weights only and needs it to rebuild the network.
    """
    if fmt not in _REGISTRY:
        refuse_pickle(data, where)
    return get_format(fmt, where).load(data, trusted_types=trusted_types, where=where, estimator=estimator)
