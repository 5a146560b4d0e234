"""``strata demo`` trains a champion through a tuning study and shows its lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

import strataml as st
from strataml.demo import run_demo
from strataml.models import get_model, list_runs, model_lineage


@pytest.mark.slow
def test_demo_trains_a_champion_with_tuning(tmp_path: Path) -> None:
    root = run_demo(directory=str(tmp_path / "demo"), keep=True, rows=4000)
    with st.Workspace.open(root) as ws:
        reg = get_model(ws, "fraud")
        assert reg["aliases"]["champion"] == 2 and len(reg["versions"]) == 3  # the loop promoted v2, rolled back v3
        train_run = reg["versions"][0]["run"]
        assert len(list_runs(ws, parent=train_run)) == 5
        lin = model_lineage(ws, "fraud", 1)
        assert lin["datasets"][0]["ref"] == "fraud_cases@v1" and lin["seed"] == 0
        assert lin["training_set"] and set(lin["feature_views"]) == {"user_spend"}
