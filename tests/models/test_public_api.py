"""The models layer's public door: pinned so that a change to it is deliberate."""

from __future__ import annotations

import strataml as st
import strataml.models as models


def test_models_public_names() -> None:
    assert sorted(models.__all__) == sorted([
        "CHAMPION", "FORMATS", "METRICS", "ExportRefused", "Gate", "LightGBMRows", "LoadedModel", "Model", "ModelFormat", "Predictor", "Run", "SignatureError", "Split",
        "TorchEstimator", "TrainResult", "Tune", "UnsafeModel", "code_version", "compare_runs", "export_model", "get_model",
        "get_run", "higher_is_better", "list_exports", "list_models", "list_runs", "load_model", "load_training_data", "metric_history", "model_lineage", "model_names",
        "package_versions", "prepare", "resolve_model", "resolve_run_id", "resolve_version", "rollback", "row_predictor", "set_alias", "split_indices",
        "start_run", "train",
    ])
    for name in models.__all__:
        assert getattr(models, name) is not None


def test_top_level_reexports() -> None:
    for name in ("Model", "Gate", "Split", "Tune", "TorchEstimator", "start_run", "train", "load_model", "LoadedModel"):
        assert name in st.__all__
        assert getattr(st, name) is getattr(models, name)


def test_errors_are_strata_errors() -> None:
    assert issubclass(models.UnsafeModel, st.StrataError)
    assert issubclass(models.SignatureError, st.StrataError)
    assert issubclass(models.ExportRefused, st.StrataError)


def test_importing_strataml_loads_no_optional_model_library() -> None:
    import subprocess
    import sys

    code = "import sys, strataml; print(sorted(m for m in ('torch', 'xgboost', 'safetensors', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
