"""A workspace for the closed loop: churn v1 (champion) and v2 (challenger) in the real
registry, and a gateway over it that answers live traffic into the prediction log."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from starlette.testclient import TestClient

import strataml as st

CUSTOMERS = st.Contract(
    "customers",
    key="id",
    columns=[
        st.Column("id", "string"),
        st.Column("tenure", "float"),
        st.Column("spend", "float", nullable=True),
        st.Column("plan", "string"),
        st.Column("churned", "int"),
    ],
)


def customers(n: int, seed: int) -> pa.Table:
    """Generated customers with a churn label that depends on tenure."""
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 12.0, n)
    spend = rng.normal(50, 15, n)
    plan = rng.choice(["basic", "plus", "pro"], p=[0.5, 0.3, 0.2], size=n)
    churned = (rng.random(n) < 1 / (1 + np.exp(0.08 * tenure - 1))).astype(np.int64)
    return pa.table(
        {
            "id": [f"c{seed}_{i}" for i in range(n)],
            "tenure": tenure,
            "spend": spend,
            "plan": plan,
            "churned": churned,
        }
    )


def put(ws: st.Workspace, table: pa.Table) -> str:
    """Ingest a table as a new version of ``customers``; its ref."""
    path = Path(ws.scratch_dir()) / f"in_{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    report = st.ingest(ws, str(path), contract=CUSTOMERS)
    assert report.status == "created", report
    return f"customers@{report.version}"


def churn(trees: int) -> st.Model:
    """The churn model over tenure, spend and plan."""
    from lightgbm import LGBMClassifier

    return st.Model(
        "churn",
        labels="customers",
        target="churned",
        columns=["tenure", "spend", "plan"],
        estimator=LGBMClassifier(n_estimators=trees, num_leaves=7, verbose=-1),
    )


def build_template(root: Path) -> Path:
    """A workspace with churn v1 (champion) and v2 (challenger), each with its reference profile."""
    from strataml.models import train
    from strataml.monitoring import profile

    ws = st.Workspace.init(root, example=False)
    put(ws, customers(2000, 0))
    ws.definitions.add(churn(10))
    assert train(ws, "churn").version == 1
    ws.definitions.add(churn(25))
    r = train(ws, "churn", promote=False)
    assert r.version == 2, r.to_dict()
    for v in (1, 2):
        profile(ws, f"churn@v{v}")
    ws.close()
    return root


def copy_of(template: Path, dest: Path) -> st.Workspace:
    """A fresh copy of the template workspace (its catalog, artifacts and profiles)."""
    shutil.copytree(template, dest)
    ws = st.Workspace.open(dest)
    ws.definitions.add(churn(25))
    return ws


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Instances for the gateway, each a different customer."""
    t = customers(n, seed)
    return [
        {"id": r["id"], "tenure": r["tenure"], "spend": r["spend"], "plan": r["plan"]}
        for r in t.to_pylist()
    ]


def serve(ws: st.Workspace, instances: list[dict[str, Any]]) -> dict[int, int]:
    """Send each instance as one request through the real gateway; versions that answered → count."""
    from strataml.serving import GatewayConfig, create_app, create_key

    key = create_key(ws.catalog, ["predict:churn"])[1]
    seen: dict[int, int] = {}
    with TestClient(
        create_app(ws, None, GatewayConfig(ratelimit_url="memory://")),
        raise_server_exceptions=False,
    ) as c:
        for inst in instances:
            r = c.post(
                "/v1/models/churn/predict",
                json={"instances": [inst]},
                headers={"authorization": f"Bearer {key}"},
            )
            assert r.status_code == 200, r.text
            v = int(r.json()["version"])
            seen[v] = seen.get(v, 0) + 1
    return seen


DEFINITIONS = """
\"\"\"The churn model and its closed loop.\"\"\"

from lightgbm import LGBMClassifier

import strataml as st

customers = st.Contract("customers", key="id", columns=[
    st.Column("id", "string"), st.Column("tenure", "float"), st.Column("spend", "float", nullable=True),
    st.Column("plan", "string"), st.Column("churned", "int"),
])
churn = st.Model("churn", labels="customers", target="churned", columns=["tenure", "spend", "plan"],
                 estimator=LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1), gate=st.Gate(min=GATE_MIN))
loop = st.Retrain(
    "churn", WHEN, sources=[dict(path=INCOMING, contract="customers")],
    canary=st.Canary(weight=0.5, watch=WATCH, interval="1s", bake="0s",
                     promote_if=[st.Check("error_rate", min_requests=20)], rollback_if=[]),
)
"""


def write_loop_definitions(
    root: Path, gate_min: dict[str, float], when: str = 'schedule="0 * * * *"', watch: str = "2s"
) -> None:
    """definitions.py declaring churn (gated by ``gate_min``) and its Retrain loop, which
    ingests ``incoming/*.parquet`` first."""
    (root / "incoming").mkdir(exist_ok=True)
    text = (
        DEFINITIONS.replace("GATE_MIN", repr(gate_min))
        .replace("WHEN", when)
        .replace("WATCH", repr(watch))
    )
    text = text.replace("INCOMING", repr(str(root / "incoming" / "*.parquet")))
    (root / "definitions.py").write_text(text)


def copy_with_loop(
    template: Path,
    dest: Path,
    gate_min: dict[str, float],
    when: str = 'schedule="0 * * * *"',
    watch: str = "2s",
) -> st.Workspace:
    """A copy of the template with :func:`write_loop_definitions`."""
    shutil.copytree(template, dest)
    write_loop_definitions(dest, gate_min, when, watch)
    return st.Workspace.open(dest)


def serve_answers(ws: st.Workspace, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Like :func:`serve`, but every answer (request id, version, prediction)."""
    from strataml.serving import GatewayConfig, create_app, create_key

    key = create_key(ws.catalog, ["predict:churn"])[1]
    out = []
    with TestClient(
        create_app(ws, None, GatewayConfig(ratelimit_url="memory://")),
        raise_server_exceptions=False,
    ) as c:
        for inst in instances:
            r = c.post(
                "/v1/models/churn/predict",
                json={"instances": [inst]},
                headers={"authorization": f"Bearer {key}"},
            )
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out
