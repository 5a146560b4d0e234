"""Built-in steps: ingest → train → batch predict in a few lines, re-run only when data changed."""

from __future__ import annotations

import datetime as dt
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


FEATURES = """
from strataml.pipelines import ingest_step, materialize_step

tx = st.Contract(
    "tx", key="tx_id", timestamp="ts",
    columns=[st.Column("tx_id", "string"), st.Column("user_id", "string"),
             st.Column("amount", "float"), st.Column("ts", "timestamp")],
)
user = st.Entity("user", key="user_id")
spend = st.FeatureView("spend", entity=user, source="tx", ttl="30d",
                       features=[st.Feature("spend_24h", agg="sum", column="amount", window="24h")])

# the view's source is the dataset the ingest step produces: materialise waits for it
online = st.Pipeline("online", [materialize_step("spend"), ingest_step("tx", "data/*.csv")])
"""


def test_materialize_waits_for_the_ingest_of_its_source_and_is_cached_after(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = pipeline_workspace(root, FEATURES)
    (root / "data").mkdir()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    t1, t2 = (now - dt.timedelta(hours=2)).isoformat(), (now - dt.timedelta(hours=1)).isoformat()
    (root / "data" / "a.csv").write_text(
        f"tx_id,user_id,amount,ts\nt1,u1,5.0,{t1}\nt2,u1,7.0,{t2}\n"
    )
    first = st.run_pipeline(ws, "online")
    assert first.state == "succeeded", first.error
    ingest, mat = first.step("ingest_tx"), first.step("materialize_spend")
    assert ingest.finished_at is not None and mat.started_at is not None
    assert ingest.finished_at <= mat.started_at
    assert mat.output["value"]["views"][0]["entities"] == 1  # type: ignore[index]
    assert st.get_online_features(ws, ["spend"], [{"user_id": "u1"}])[0]["spend_24h"] == 12.0
    again = st.run_pipeline(ws, "online")
    assert [s.state for s in again.steps] == ["cached", "cached"]
    ws.close()
