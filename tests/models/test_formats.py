"""Every registered model format passes the public conformance check
(:func:`strataml.testing.check_model_format`): canonical dumps, byte-identical
predictions after a round trip, pickles and foreign or tampered files refused, a
missing extra named, the fast row predictor and the ONNX export answering like the model."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import strataml as st
from strataml.models import FORMATS, prepare
from strataml.testing import check_model_format

from .conftest import loans_table

NUMERIC = ["amount", "age", "income"]


def _signature(
    columns: list[str], kind: str = "binary", classes: list[Any] | None = None
) -> dict[str, Any]:
    types = {"amount": "float", "age": "int", "income": "float", "country": "string"}
    return {
        "inputs": [{"name": c, "type": types[c]} for c in columns],
        "output": {
            "kind": kind,
            "classes": [0, 1] if classes is None and kind == "binary" else (classes or []),
        },
    }


def _data(
    fmt: str, sig: dict[str, Any], target: str = "defaulted"
) -> tuple[Any, np.ndarray, list[dict[str, Any]]]:
    table = loans_table(600, seed=3)
    names = [i["name"] for i in sig["inputs"]]
    rows = loans_table(80, seed=9).select(names).to_pylist()
    rows[3]["income"] = None  # a missing value
    if "country" in names:
        rows[5]["country"] = "JP"  # a category never seen in training
    return prepare(table, sig, fmt), table[target].to_numpy(), rows


Case = tuple[Any, list[dict[str, Any]], dict[str, Any], Any]


def lightgbm_numeric() -> Case:
    from lightgbm import LGBMClassifier

    sig = _signature(NUMERIC)
    x, y, rows = _data("lightgbm", sig)
    return LGBMClassifier(n_estimators=15, n_jobs=1, verbosity=-1).fit(x, y), rows, sig, None


def lightgbm_categories() -> Case:
    from lightgbm import LGBMClassifier

    sig = _signature([*NUMERIC, "country"], "multiclass", ["A", "B", "C"])
    x, y, rows = _data("lightgbm", sig, "grade")
    return LGBMClassifier(n_estimators=10, n_jobs=1, verbosity=-1).fit(x, y), rows, sig, None


def xgboost_numeric() -> Case:
    import xgboost as xgb

    sig = _signature(NUMERIC)
    x, y, rows = _data("xgboost", sig)
    return xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y), rows, sig, None


def xgboost_regression_categories() -> Case:
    import xgboost as xgb

    sig = _signature([*NUMERIC, "country"], "regression")
    x, y, rows = _data("xgboost", sig, "loss")
    return (
        xgb.XGBRegressor(n_estimators=10, max_depth=3, n_jobs=1, enable_categorical=True).fit(x, y),
        rows,
        sig,
        None,
    )


def skops_pipeline() -> Case:
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    sig = _signature([*NUMERIC, "country"])
    x, y, rows = _data("skops", sig)
    est = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (OneHotEncoder(handle_unknown="ignore"), ["country"]),
        ),
        LogisticRegression(),
    )
    return est.fit(x, y), rows, sig, None


def _net(n: int) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(n, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def torch_network() -> Case:
    sig = _signature(NUMERIC)
    x, y, rows = _data("torch", sig)
    est = st.TorchEstimator(_net, epochs=2, batch_size=128, random_state=0).fit(x, y)
    return est, rows, sig, st.TorchEstimator(_net)


def onnx_export() -> Case:
    from sklearn.linear_model import LogisticRegression

    sig = _signature(NUMERIC)
    x, y, rows = _data("skops", sig)
    est = LogisticRegression().fit(x.fillna(0.0), y)
    return FORMATS["skops"].to_onnx(est, sig).SerializeToString(), rows, sig, None


#: (format, the modules its extra brings, the model it is checked on)
CASES: dict[str, tuple[str, tuple[str, ...], Callable[[], Case]]] = {
    "lightgbm-numeric": ("lightgbm", ("lightgbm",), lightgbm_numeric),
    "lightgbm-categories": ("lightgbm", ("lightgbm",), lightgbm_categories),
    "xgboost-numeric": ("xgboost", ("xgboost",), xgboost_numeric),
    "xgboost-regression-categories": ("xgboost", ("xgboost",), xgboost_regression_categories),
    "skops-pipeline": ("skops", ("skops",), skops_pipeline),
    "torch-network": ("torch", ("torch", "safetensors"), torch_network),
    "onnx-export": ("onnx", ("onnx", "onnxruntime", "skl2onnx"), onnx_export),
}


def test_every_registered_format_is_checked() -> None:
    assert {fmt for fmt, _, _ in CASES.values()} == set(FORMATS)


@pytest.mark.parametrize("case", list(CASES))
def test_format_conforms(case: str) -> None:
    fmt, modules, make = CASES[case]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"the {fmt!r} format needs {', '.join(missing)}: pip install 'strataml[{FORMATS[fmt].extra or fmt}]'"
        )
    fitted, rows, signature, definition = make()
    check_model_format(
        FORMATS[fmt],
        fitted,
        rows,
        signature,
        definition=definition,
        extra_modules=None if fmt != "onnx" else ("onnx", "onnxruntime"),
    )
