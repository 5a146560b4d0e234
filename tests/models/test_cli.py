"""The models CLI end to end in subprocesses: train, runs, models (alias, rollback, lineage)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import strataml as st
from strataml.models import get_model

DEFINITIONS = '''
import strataml as st
from lightgbm import LGBMClassifier

loans_default = st.Model(
    "loans_default", labels="loans", target="defaulted", columns=["amount", "age", "income", "country"],
    estimator=LGBMClassifier(n_estimators=20, n_jobs=1), metrics=["roc_auc", "log_loss"],
    gate=st.Gate(min={"roc_auc": 0.6}, max_drop_vs_champion={"roc_auc": 0.02}),
    tune=st.Tune(params={"num_leaves": ("int", 4, 32)}, trials=2),
)
strict = st.Model(
    "strict", labels="loans", target="defaulted", columns=["age"],
    estimator=LGBMClassifier(n_estimators=5, n_jobs=1), gate=st.Gate(min={"roc_auc": 0.99}),
)
'''


def _strata(python: str, env: dict[str, str], ws: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([python, "-m", "strataml", *args, "--workspace", str(ws)], capture_output=True, text=True, env=env, timeout=240)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow  # several whole CLI processes
def test_train_runs_and_models_commands(loans_ws: st.Workspace, python: str, cli_env: dict[str, str]) -> None:
    ws = loans_ws.root
    (ws / "definitions.py").write_text(DEFINITIONS)
    first = json.loads(_strata(python, cli_env, ws, "train", "loans_default", "--tune", "0", "--json").stdout)
    assert first["version"] == 1 and first["gate"]["status"] == "passed" and first["model"] == "loans_default"
    assert set(first) >= {"run", "model", "version", "metrics", "gate"}
    import sqlalchemy as sa

    from strataml.monitoring._tables import monitor_profiles

    with loans_ws.catalog.read() as conn:  # strata train stores the version's reference profile for drift checks
        assert conn.execute(sa.select(monitor_profiles.c.ref)).scalars().all() == ["model:loans_default@v1"]
    second = json.loads(_strata(python, cli_env, ws, "train", "loans_default", "--promote", "--json").stdout)
    assert second["version"] == 2 and second["tuning"]["trials"] == 2 and second["aliases"] == {"champion": 2}

    failed = _strata(python, cli_env, ws, "train", "strict", "--json", ok=False)
    assert failed.returncode == 1
    out = json.loads(failed.stdout)
    assert out["version"] is None and out["gate"]["status"] == "failed" and "below the minimum 0.99" in out["gate"]["reasons"][0]

    runs = json.loads(_strata(python, cli_env, ws, "runs", "list", "--kind", "train", "--json").stdout)
    assert len(runs) == 3
    good = json.loads(_strata(python, cli_env, ws, "runs", "list", "--metric", "roc_auc>=0.7", "--kind", "train", "--json").stdout)
    assert {r["id"] for r in good} == {r["id"] for r in runs if r["metrics"]["roc_auc"] >= 0.7}
    assert out["run"] not in {r["id"] for r in good} and first["run"] in {r["id"] for r in good}
    by_param = json.loads(_strata(python, cli_env, ws, "runs", "list", "--param", "n_estimators=5", "--json").stdout)
    assert [r["id"] for r in by_param] == [out["run"]]
    trials = json.loads(_strata(python, cli_env, ws, "runs", "list", "--parent", second["run"][:8], "--json").stdout)
    assert len(trials) == 2
    shown = json.loads(_strata(python, cli_env, ws, "runs", "show", first["run"][:10], "--json").stdout)
    assert shown["id"] == first["run"] and shown["lineage"]["datasets"] == ["loans@v1"] and shown["artifacts"]
    cmp_ = json.loads(_strata(python, cli_env, ws, "runs", "compare", first["run"], second["run"], "--json").stdout)
    assert "metric:roc_auc" in cmp_["differs"]

    listed = json.loads(_strata(python, cli_env, ws, "models", "list", "--json").stdout)
    assert listed == [{"name": "loans_default", "latest": 2, "versions": [1, 2], "aliases": {"champion": 2}}]
    alias = json.loads(_strata(python, cli_env, ws, "models", "alias", "loans_default", "challenger", "1", "--reason", "compare", "--json").stdout)
    assert alias == {"model": "loans_default", "alias": "challenger", "from": None, "to": 1}
    back = json.loads(_strata(python, cli_env, ws, "models", "rollback", "loans_default", "--reason", "bad canary", "--json").stdout)
    assert back["from"] == 2 and back["to"] == 1
    show = json.loads(_strata(python, cli_env, ws, "models", "show", "loans_default", "--json").stdout)
    assert show["aliases"] == {"champion": 1, "challenger": 1}
    assert [(v["version"], len(v["sha256"]), bool(v["metrics"]), v["run"]) for v in show["versions"]] == [
        (1, 64, True, first["run"]), (2, 64, True, second["run"]),
    ]
    lineage = json.loads(_strata(python, cli_env, ws, "models", "lineage", "loans_default", "--json").stdout)
    assert lineage["version"] == 1 and lineage["datasets"][0]["ref"] == "loans@v1"
    events = json.loads(_strata(python, cli_env, ws, "events", "--kind", "model.alias", "--json").stdout)
    assert events[-1]["payload"]["reason"] == "bad canary" and events[-1]["actor"]

    human = _strata(python, cli_env, ws, "models", "show", "loans_default")
    assert "champion" in human.stdout
    missing = _strata(python, cli_env, ws, "models", "show", "nope", ok=False)
    assert missing.returncode != 0 and "no model named 'nope'" in missing.stderr and "Traceback" not in missing.stderr


NEW_FORMATS = '''
import torch
from xgboost import XGBClassifier

import strataml as st


class Net(torch.nn.Module):
    def __init__(self, n_inputs):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(n_inputs, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

    def forward(self, x):
        return self.layers(x)


loans_xgb = st.Model(
    "loans_xgb", labels="loans", target="defaulted", columns=["amount", "age", "income", "country"],
    estimator=XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1), metrics=["roc_auc"],
)
loans_mlp = st.Model(
    "loans_mlp", labels="loans", target="defaulted", columns=["amount", "age", "income"],
    estimator=st.TorchEstimator(Net, epochs=2, batch_size=256, lr=0.01), metrics=["roc_auc"],
)
'''


@pytest.mark.slow
def test_train_and_batch_score_xgboost_and_torch_models(loans_ws: st.Workspace, python: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    """Subprocesses that import torch and xgboost: tens of seconds, so marked slow."""
    pytest.importorskip("xgboost")
    pytest.importorskip("torch")
    ws = loans_ws.root
    (ws / "definitions.py").write_text(NEW_FORMATS)
    for name in ("loans_xgb", "loans_mlp"):
        trained = json.loads(_strata(python, cli_env, ws, "train", name, "--json").stdout)
        assert trained["version"] == 1 and trained["gate"]["passed"] and trained["metrics"]["roc_auc"] > 0.55
        assert get_model(loans_ws, name)["versions"][0]["format"] == ("xgboost" if name == "loans_xgb" else "torch")
        out = tmp_path / f"{name}.parquet"
        scored = json.loads(_strata(python, cli_env, ws, "predict", name, "--input", "loans", "--output", str(out), "--json").stdout)
        assert scored["rows"] == 4000 and out.exists()
