"""The demo declares what it uses the way a user would: by adding it to ``definitions.py``.

Every process that opens the workspace (a pipeline step's worker, the scheduler, the
gateway) then sees the same contracts, views, models, alerts and loops.
"""

from __future__ import annotations

import textwrap

from rich.syntax import Syntax

import strataml as st
from strataml.demo._show import console

FEATURES = '''
# features: what the fraud model knows about a user, point-in-time correct
user = st.Entity("user", key="user_id")
user_spend = st.FeatureView(
    "user_spend", entity=user, source="transactions", ttl="30d",
    features=[
        st.Feature("last_amount", expr="amount"),
        st.Feature("spend_24h", agg="sum", column="amount", window="24h"),
        st.Feature("tx_count_7d", agg="count", window="7d"),
        st.Feature("avg_amount_30d", agg="mean", column="amount", window="30d"),
    ],
)
'''

MODEL = '''
# labelled transactions, and the model trained on them
from lightgbm import LGBMClassifier

fraud_cases = st.Contract(
    "fraud_cases", key="tx_id", timestamp="ts",
    columns=[
        st.Column("tx_id", "string"), st.Column("user_id", "string"), st.Column("ts", "timestamp"),
        st.Column("amount", "float"), st.Column("country", "string"), st.Column("is_fraud", "int"),
    ],
)
fraud = st.Model(
    "fraud", features=["user_spend"], labels="fraud_cases", target="is_fraud", columns=["amount", "country"],
    estimator=LGBMClassifier(n_estimators=60, n_jobs=1), metrics=["roc_auc", "log_loss"],
    gate=st.Gate(min={"roc_auc": 0.6}, max_drop_vs_champion={"roc_auc": 0.01}),
    tune=st.Tune(params={"num_leaves": ("int", 4, 32, "log"), "learning_rate": ("float", 0.02, 0.2, "log")}, trials=5),
)
'''

MONITORING = '''
# outcomes arrive later, keyed by the gateway's request id; an alert on the amounts' drift
fraud_outcomes = st.Contract(
    "fraud_outcomes", key="request_id",
    columns=[st.Column("request_id", "string"), st.Column("is_fraud", "int")],
)
amount_drift = st.Alert(
    "fraud-amount-drift", model="fraud", metric="feature_drift", feature="amount", threshold=0.2,
    window="1h", severity="warning", description="the amounts sent to fraud moved away from training",
)
'''


def declare(ws: st.Workspace, source: str, *, show: bool = True) -> None:
    """Append ``source`` to the workspace's ``definitions.py`` and read it again."""
    path = ws.root / "definitions.py"
    text = textwrap.dedent(source).strip("\n")
    path.write_text(path.read_text().rstrip("\n") + "\n\n" + text + "\n")
    ws.reload_definitions()
    if show:
        console.print(Syntax(text, "python", theme="ansi_dark", background_color="default"))
