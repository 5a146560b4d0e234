"""ONNX export: converted versions predict like the native ones, int8 quantisation shrinks
networks and refuses tree ensembles, and loading refuses tampered or unsafe files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from onnx import TensorProto, helper
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import strataml as st
from strataml.errors import IntegrityError, NotFound
from strataml.models import (
    ExportRefused,
    UnsafeModel,
    export_model,
    get_model,
    list_exports,
    load_model,
)
from strataml.models._onnx_runtime import check_onnx, load_onnx
from strataml.models._predictor import Predictor, prepare
from strataml.spine._events import list_events

from .conftest import loans_table

NUMERIC = ["amount", "age", "income"]


def _train(
    ws: st.Workspace, name: str, estimator: Any, columns: list[str], target: str = "defaulted"
) -> int:
    result = st.train(
        ws, st.Model(name, labels="loans", target=target, columns=columns, estimator=estimator)
    )
    assert result.version is not None, result.gate
    return result.version


def _rows(n: int = 300) -> list[dict[str, Any]]:
    return loans_table(n, seed=11).select([*NUMERIC, "country"]).to_pylist()


def _same(native: Any, onnx_pred: Any, atol: float) -> None:
    if isinstance(native, list):  # multiclass: class -> probability per row
        assert [list(r) for r in onnx_pred] == [list(r) for r in native]
        native = [list(r.values()) for r in native]
        onnx_pred = [list(r.values()) for r in onnx_pred]
    np.testing.assert_allclose(
        np.asarray(onnx_pred, dtype=float), np.asarray(native, dtype=float), atol=atol, rtol=0
    )


def test_lightgbm_exports_predict_like_native_and_are_recorded(loans_ws: st.Workspace) -> None:
    v = _train(
        loans_ws, "lgb", LGBMClassifier(n_estimators=30, n_jobs=1), NUMERIC
    )  # income has missing values
    out = export_model(loans_ws, "lgb", "champion")
    assert (
        out["created"] and out["format"] == "onnx" and not out["quantized"] and out["version"] == v
    )
    assert out["max_abs_diff"] < 1e-5 and out["sample"] == {"source": "loans@v1", "rows": 512}
    assert (
        out["size"] == len(loans_ws.artifacts.read_bytes(out["sha256"]))
        and out["size"] < out["size_native"]
    )
    rows = _rows()
    _same(
        load_model(loans_ws, "lgb").predict(rows),
        load_model(loans_ws, "lgb", runtime="onnx").predict(rows),
        1e-5,
    )
    onnx_model = load_model(loans_ws, "lgb", runtime="onnx")
    assert (
        onnx_model.format == "onnx"
        and onnx_model.sha256 == out["sha256"]
        and onnx_model.version == v
    )

    again = export_model(loans_ws, "lgb", v)  # same bytes: the existing export, not a second record
    assert not again["created"] and again["sha256"] == out["sha256"]
    assert [e["sha256"] for e in list_exports(loans_ws, "lgb")] == [out["sha256"]]
    shown = get_model(loans_ws, "lgb")["versions"][0]["exports"]
    assert [(e["sha256"], e["format"], e["quantized"], e["max_abs_diff"]) for e in shown] == [
        (out["sha256"], "onnx", False, out["max_abs_diff"])
    ]
    events = list_events(loans_ws.catalog, kind="model.version.exported")
    assert (
        len(events) == 1
        and events[0].payload["sha256"] == out["sha256"]
        and events[0].payload["version"] == v
    )


@pytest.mark.parametrize(
    ("target", "estimator"),
    [
        ("loss", LGBMRegressor(n_estimators=30, n_jobs=1)),
        ("grade", LGBMClassifier(n_estimators=20, n_jobs=1)),
    ],
    ids=["regression", "multiclass"],
)
def test_lightgbm_regression_and_multiclass(
    loans_ws: st.Workspace, target: str, estimator: Any
) -> None:
    _train(loans_ws, "m", estimator, NUMERIC, target=target)
    out = export_model(loans_ws, "m")
    rows = _rows()
    native, onnx_pred = (
        load_model(loans_ws, "m").predict(rows),
        load_model(loans_ws, "m", runtime="onnx").predict(rows),
    )
    if (
        target == "loss"
    ):  # values in the thousands: float32 inside ONNX, so compare relative to the scale
        assert (
            out["tolerance_scale"] > 100
            and out["max_abs_diff"] <= out["tolerance"] * out["tolerance_scale"]
        )
        np.testing.assert_allclose(onnx_pred, native, rtol=1e-5, atol=1e-3)
    else:
        assert out["max_abs_diff"] < 1e-5 and list(onnx_pred[0]) == ["A", "B", "C"]
        _same(native, onnx_pred, 1e-5)


def test_sklearn_pipeline_with_strings_exports(loans_ws: st.Workspace) -> None:
    est = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["country"]), remainder=StandardScaler()
        ),
        LogisticRegression(max_iter=200),
    )
    _train(loans_ws, "pipe", est, ["amount", "age", "country"])
    out = export_model(loans_ws, "pipe")
    assert out["max_abs_diff"] < 1e-5 and out["converter"]["skl2onnx"]
    rows = _rows()
    _same(
        load_model(loans_ws, "pipe").predict(rows),
        load_model(loans_ws, "pipe", runtime="onnx").predict(rows),
        1e-5,
    )


def test_lightgbm_with_string_categories_is_refused_clearly(loans_ws: st.Workspace) -> None:
    _train(loans_ws, "cat", LGBMClassifier(n_estimators=10, n_jobs=1), ["amount", "country"])
    with pytest.raises(ExportRefused, match=r"string input\(s\) \['country'\]"):
        export_model(loans_ws, "cat")
    assert list_exports(loans_ws, "cat") == []


def test_int8_quantised_mlp_is_smaller_and_close(loans_ws: st.Workspace) -> None:
    mlp = make_pipeline(StandardScaler(), MLPClassifier((64, 64), max_iter=200, random_state=0))
    _train(loans_ws, "mlp", mlp, ["amount", "age"])
    full = export_model(loans_ws, "mlp")
    q = export_model(loans_ws, "mlp", quantize="int8")
    assert q["quantized"] and q["quantization"] == "int8" and q["sha256"] != full["sha256"]
    assert q["size_unquantized"] == full["size"] and q["size"] < full["size"] / 1.8
    assert q["max_abs_diff_unquantized"] < 1e-5 and q["max_abs_diff"] <= q["tolerance"] == 0.05
    rows = _rows()
    native = load_model(loans_ws, "mlp").predict(rows)
    _same(native, load_model(loans_ws, "mlp", runtime="onnx").predict(rows), 1e-5)
    _same(native, load_model(loans_ws, "mlp", runtime="onnx-int8").predict(rows), 0.05)
    assert [e["quantized"] for e in get_model(loans_ws, "mlp")["versions"][0]["exports"]] == [
        False,
        True,
    ]
    assert (
        export_model(loans_ws, "mlp", quantize="int8")["created"] is False
    )  # quantisation is deterministic too


@pytest.mark.parametrize(
    ("estimator", "operator"),
    [
        (LGBMClassifier(n_estimators=10, n_jobs=1), "TreeEnsembleClassifier"),
        (make_pipeline(StandardScaler(), LogisticRegression()), "LinearClassifier"),
    ],
    ids=["trees", "logistic"],
)
def test_int8_without_weight_matrices_is_refused_as_a_no_op(
    loans_ws: st.Workspace, estimator: Any, operator: str
) -> None:
    _train(loans_ws, "nomat", estimator, ["amount", "age"])
    with pytest.raises(ExportRefused, match="would not change") as err:
        export_model(loans_ws, "nomat", quantize="int8")
    assert operator in err.value.message and "without --quantize" in str(err.value.hint)
    assert list_exports(loans_ws, "nomat") == []


def test_export_above_tolerance_is_refused(loans_ws: st.Workspace) -> None:
    _train(loans_ws, "reg", LGBMRegressor(n_estimators=30, n_jobs=1), NUMERIC, target="loss")
    with pytest.raises(
        ExportRefused, match=r"differ from the native model's by up to .* above the tolerance"
    ):
        export_model(loans_ws, "reg", tolerance=1e-12)
    assert list_exports(loans_ws, "reg") == [] and not list_events(
        loans_ws.catalog, kind="model.version.exported"
    )
    with pytest.raises(st.StrataError, match="unknown export format"):
        export_model(loans_ws, "reg", format="pmml")
    with pytest.raises(st.StrataError, match="unknown quantisation"):
        export_model(loans_ws, "reg", quantize="int4")


def test_tampered_export_is_refused_and_missing_export_is_named(loans_ws: st.Workspace) -> None:
    _train(loans_ws, "t", LGBMClassifier(n_estimators=10, n_jobs=1), NUMERIC)
    with pytest.raises(NotFound, match="has no ONNX export") as err:
        load_model(loans_ws, "t", runtime="onnx")
    assert "strata models export t@v1 --format onnx" in str(err.value.hint)
    out = export_model(loans_ws, "t")
    path = Path(loans_ws.artifacts.uri(out["sha256"]))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        load_model(loans_ws, "t", runtime="onnx")
    with pytest.raises(st.StrataError, match="unknown runtime"):
        load_model(loans_ws, "t", runtime="tensorrt")


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob", "reg:squarederror"])
def test_xgboost_converter_matches_native(objective: str) -> None:
    xgb = pytest.importorskip("xgboost")
    from strataml.models import FORMATS

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    x[::20, 1] = np.nan
    y = {
        "binary:logistic": x[:, 0] > 0,
        "multi:softprob": rng.integers(0, 3, 300),
        "reg:squarederror": 3 * x[:, 0],
    }[objective]
    params = {
        "objective": objective,
        "max_depth": 3,
        **({"num_class": 3} if objective.startswith("multi") else {}),
    }
    names = ["a", "b", "c"]
    booster = xgb.train(params, xgb.DMatrix(x, y.astype(float), feature_names=names), 10)
    kind = {
        "binary:logistic": "binary",
        "multi:softprob": "multiclass",
        "reg:squarederror": "regression",
    }[objective]
    classes = {"binary": [0, 1], "multiclass": [0, 1, 2], "regression": []}[kind]
    sig = {
        "inputs": [{"name": n, "type": "float"} for n in names],
        "output": {"kind": kind, "classes": classes},
    }
    model = load_onnx(FORMATS["xgboost"].to_onnx(booster, sig).SerializeToString())
    frame = prepare(pd.DataFrame(x, columns=names), sig, "onnx")
    native = booster.predict(xgb.DMatrix(x, feature_names=names))
    np.testing.assert_allclose(
        Predictor(model, "onnx", sig).predict_matrix(frame), native, atol=1e-5
    )
    assert booster.feature_names == names  # the converter worked on a copy


def test_without_training_data_the_sample_is_synthetic_from_the_signature(
    workspace: st.Workspace,
) -> None:
    from strataml.models._onnx_export import _sample

    sig = {
        "inputs": [
            {"name": "x", "type": "float"},
            {"name": "n", "type": "int"},
            {"name": "b", "type": "bool"},
            {"name": "s", "type": "string"},
        ]
    }
    table, source = _sample(workspace, {"training_set": None, "labels": "gone@v1"}, sig, 64)
    assert (
        source == "synthetic"
        and table.num_rows == 64
        and table.column_names == ["x", "n", "b", "s"]
    )


# --- unsafe files ----------------------------------------------------------------------


def _graph(initializer: TensorProto | None = None, domain: str = "") -> onnx.ModelProto:
    w = initializer or helper.make_tensor("w", TensorProto.FLOAT, [1], [2.0])
    node = (
        helper.make_node("Mul", ["x", "w"], ["y"])
        if not domain
        else helper.make_node("Evil", ["x", "w"], ["y"], domain=domain)
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [w],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def test_a_plain_standard_model_loads() -> None:
    model = load_onnx(_graph().SerializeToString())
    out = model.session.run(None, {"x": np.array([[1.5]], dtype=np.float32)})[0]
    assert out.tolist() == [[3.0]]


def test_external_data_is_refused() -> None:
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../etc/passwd"), ("offset", "0"), ("length", "4")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    with pytest.raises(UnsafeModel, match=r"external file \('../../../etc/passwd'\)"):
        load_onnx(_graph(w).SerializeToString())


def test_custom_operator_domain_is_refused() -> None:
    with pytest.raises(UnsafeModel, match=r"domain\(s\) \['com.evil'\]"):
        load_onnx(_graph(domain="com.evil").SerializeToString())


@pytest.mark.parametrize(
    "data",
    [b"", b"not an onnx model at all", b"\x08\x07\x12\x00", bytes(range(256))],
    ids=["empty", "text", "no-graph", "noise"],
)
def test_what_is_not_an_onnx_model_is_refused(data: bytes) -> None:
    with pytest.raises(UnsafeModel, match="not a valid ONNX model"):
        check_onnx(data)




# --- CLI -------------------------------------------------------------------------------


def test_cli_export_and_show(loans_ws: st.Workspace, python: str, cli_env: dict[str, str]) -> None:
    _train(loans_ws, "cli", LGBMClassifier(n_estimators=10, n_jobs=1), NUMERIC)

    def strata(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "strataml", *args, "--workspace", str(loans_ws.root)],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=240,
        )

    proc = strata("models", "export", "cli@champion", "--format", "onnx", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (
        {"sha256", "size", "format", "quantized", "max_abs_diff"} <= set(out)
        and out["format"] == "onnx"
        and not out["quantized"]
    )
    refused = strata("models", "export", "cli", "--quantize", "int8", "--json")
    assert (
        refused.returncode == 2
        and "would not change" in refused.stderr
        and "hint:" in refused.stderr
    )
    shown = json.loads(strata("models", "show", "cli", "--json").stdout)
    assert [e["sha256"] for e in shown["versions"][0]["exports"]] == [out["sha256"]]


TORCH_DEFINITIONS = """
import torch

import strataml as st


def mlp(n_inputs, n_outputs):
    return torch.nn.Sequential(
        torch.nn.Linear(n_inputs, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, n_outputs),
    )


def net(loss):
    return st.TorchEstimator(mlp, loss=loss, epochs=3, batch_size=128, lr=0.01)


torch_bce = st.Model("torch_bce", labels="loans", target="defaulted", columns={columns!r}, estimator=net("bce"))
torch_grade = st.Model("torch_grade", labels="loans", target="grade", columns={columns!r}, estimator=net("cross_entropy"))
torch_loss = st.Model("torch_loss", labels="loans", target="loss", columns={columns!r}, estimator=net("mse"))
"""


def _torch_ws(ws: st.Workspace) -> st.Workspace:
    pytest.importorskip("torch")
    (ws.root / "definitions.py").write_text(TORCH_DEFINITIONS.format(columns=NUMERIC))
    return st.Workspace.open(ws.root)


@pytest.mark.parametrize("name", ["torch_bce", "torch_grade", "torch_loss"])
def test_torch_network_exports_with_its_preparation_and_head_in_the_graph(
    loans_ws: st.Workspace, name: str
) -> None:
    ws = _torch_ws(loans_ws)
    assert st.train(ws, name).version == 1
    out = export_model(ws, name)
    # regressors: float32 network outputs times the target's scale, so relative to the values
    atol = 1e-5 * out["tolerance_scale"]
    assert out["created"] and out["max_abs_diff"] < atol and out["sample"]["rows"] == 512
    proto = onnx.load_from_string(ws.artifacts.read_bytes(out["sha256"]))
    # the raw feature matrix goes in (any number of rows): filling and scaling are in the graph
    (inp,) = proto.graph.input
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 3]
    assert {"IsNaN", "Where", "Sub", "Div", "Gemm"} <= {n.op_type for n in proto.graph.node}
    rows = _rows()  # incomes are missing in some rows
    assert any(r["income"] is None or r["income"] != r["income"] for r in rows)
    native = load_model(ws, name).predict(rows)
    exported = load_model(ws, name, runtime="onnx")
    _same(native, exported.predict(rows), atol)
    _same(native[:1], exported.predict(rows[:1]), atol)
    assert not export_model(ws, name)["created"]  # the same network gives the same bytes


def test_int8_quantised_torch_network_is_smaller_and_close(loans_ws: st.Workspace) -> None:
    ws = _torch_ws(loans_ws)
    st.train(ws, "torch_bce")
    full = export_model(ws, "torch_bce")
    q = export_model(ws, "torch_bce", quantize="int8")
    assert q["quantized"] and q["size_unquantized"] == full["size"] and q["size"] < full["size"] / 1.8
    assert q["max_abs_diff_unquantized"] < 1e-5 and q["max_abs_diff"] <= 0.05
    rows = _rows()
    _same(load_model(ws, "torch_bce").predict(rows), load_model(ws, "torch_bce", runtime="onnx-int8").predict(rows), 0.05)
    print(f"torch_bce: safetensors {full['size_native']} B, onnx {full['size']} B "
          f"(max diff {full['max_abs_diff']:.2g}), int8 {q['size']} B (max diff {q['max_abs_diff']:.2g})")


def test_registered_xgboost_version_exports_and_serves_like_native(loans_ws: st.Workspace) -> None:
    xgb = pytest.importorskip("xgboost")
    _train(loans_ws, "xg", xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1), NUMERIC)
    out = export_model(loans_ws, "xg")
    assert out["created"] and out["max_abs_diff"] <= 1e-4
    rows = _rows(50)
    _same(load_model(loans_ws, "xg").predict(rows), load_model(loans_ws, "xg", runtime="onnx").predict(rows), 1e-4)
