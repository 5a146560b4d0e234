"""Built-in steps: ingest → train → batch predict in a few lines, re-run only when data changed."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.models import get_model

from .pipeline_ws import pipeline_workspace

BODY = """
from sklearn.linear_model import LogisticRegression
from strataml.pipelines import export_step, ingest_step, score_step, train_step

loans = st.Contract(
    "loans", key="loan_id", timestamp="ts",
    columns=[
        st.Column("loan_id", "string", unique=True), st.Column("ts", "timestamp"),
        st.Column("amount", "float", min=0), st.Column("age", "int"), st.Column("income", "float", nullable=True),
        st.Column("country", "string"), st.Column("defaulted", "int"), st.Column("grade", "string"),
        st.Column("loss", "float"),
    ],
)
risk = st.Model("risk", labels="loans", target="defaulted", columns=["amount", "age"],
                estimator=LogisticRegression(max_iter=200), metrics=["roc_auc"])

# listed out of order on purpose: what each step reads and produces orders them
nightly = st.Pipeline("nightly", [
    score_step("risk", "loans", "out/scores.parquet"),
    export_step("risk"),
    train_step("risk"),
    ingest_step("loans", "data/*.parquet"),
])
"""


@pytest.mark.slow
def test_ingest_train_and_score_rerun_only_when_the_data_changed(tmp_path: Path) -> None:
    from models.conftest import loans_table

    root = tmp_path / "ws"
    ws = pipeline_workspace(root, BODY)
    (root / "data").mkdir()
    pq.write_table(loans_table(600, seed=1), root / "data" / "part-1.parquet")

    first = st.run_pipeline(ws, "nightly")
    assert first.state == "succeeded", first.error
    order = [s.name for s in sorted(first.steps, key=lambda s: s.started_at)]  # type: ignore[arg-type, return-value]
    assert order[:2] == ["ingest_loans", "train_risk"]
    assert set(order[2:]) == {"score_risk", "export_risk"}
    assert first.step("ingest_loans").output["value"]["accepted"] == 600  # type: ignore[index]
    assert first.step("train_risk").output["value"]["version"] == 1  # type: ignore[index]
    assert first.step("export_risk").output["value"]["format"] == "onnx"  # type: ignore[index]
    assert pq.read_table(root / "out" / "scores.parquet").num_rows == 600

    again = st.run_pipeline(ws, "nightly")
    assert [s.state for s in again.steps] == ["cached"] * 4
    assert [v["version"] for v in get_model(ws, "risk")["versions"]] == [1]

    pq.write_table(
        loans_table(300, seed=2).set_column(0, "loan_id", [[f"N{i}" for i in range(300)]]),
        root / "data" / "part-2.parquet",
    )
    third = st.run_pipeline(ws, "nightly")
    assert {s.name: s.state for s in third.steps if s.name != "export_risk"} == {
        "ingest_loans": "succeeded",
        "train_risk": "succeeded",
        "score_risk": "succeeded",
    }
    assert [v["version"] for v in get_model(ws, "risk")["versions"]] == [1, 2]
    # the export follows the champion: a new export only when the champion changed
    champion = get_model(ws, "risk")["aliases"]["champion"]
    exported = third.step("export_risk")
    assert exported.output["value"]["version"] == champion  # type: ignore[index]
    assert exported.state == ("succeeded" if champion == 2 else "cached")
    ws.close()
