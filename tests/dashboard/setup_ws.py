"""A workspace for the dashboard's tests: real datasets (one with hostile names), a real
model with two versions, aliases, a canary, and logged predictions from the gateway."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from starlette.testclient import TestClient

import strataml as st
from serving.registry_setup import build, train_again
from strataml.data import Column, Contract, ingest
from strataml.models import set_alias
from strataml.serving import GatewayConfig, create_app, create_key, set_traffic

# Strings that would run script if a page put them into HTML unescaped (rule and model
# names must be identifiers; column names, categories and reasons are free text).
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '"><img src=x onerror="window.__xss=2">'
XSS_CATEGORY = "<script>window.__xss=4</script>"
XSS_REASON = '"><script>window.__xss=5</script>'
PAYLOADS = (XSS_SCRIPT, XSS_IMG, XSS_CATEGORY, XSS_REASON)

DEFINITIONS = """
import strataml as st
from lightgbm import LGBMClassifier
from serving.registry_setup import LABELS, REQUEST, SPEND, TX, USER

fraud = st.Model("fraud", labels="labels", target="is_fraud", features=["user_spend", "request"],
                 estimator=LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, random_state=0))
"""

EVIL = Contract("evil", columns=[
    Column(XSS_SCRIPT, "string", allowed=[XSS_CATEGORY, "ok"]),
    Column(XSS_IMG, "float", min=0),
    Column("amount", "float"),
], rules={"small_amount": "amount < 100"})


def _put(ws: st.Workspace, table: pa.Table, contract: Contract) -> Any:
    path = Path(ws.scratch_dir()) / f"in_{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    return ingest(ws, str(path), contract=contract)


def populate(ws: st.Workspace) -> dict[str, Any]:
    """Fill ``ws``; returns what the tests check against (keys, request ids, the hostile dataset's counts)."""
    build(ws)  # tx@v1, labels@v1, views, fraud v1 (champion)
    v2 = train_again(ws, trees=40)
    set_alias(ws, "fraud", "challenger", v2, reason=XSS_REASON)
    evil = _put(ws, pa.table({
        XSS_SCRIPT: [XSS_CATEGORY, "ok", "ok", "bad", XSS_CATEGORY, "ok"],
        XSS_IMG: [1.0, 2.0, -1.0, 3.0, 4.0, 5.0],
        "amount": [10.0, 20.0, 30.0, 40.0, 500.0, 60.0],
    }), EVIL)
    keys = {
        "read": create_key(ws.catalog, ["read"], "dashboard")[1],
        "admin": create_key(ws.catalog, ["admin"])[1],
        "predict": create_key(ws.catalog, ["predict:fraud"])[1],
    }
    insts = [{"user_id": f"u{i}", "amount_now": 10.0 + 7 * i} for i in range(12)]
    # amounts far above the training labels' (a gamma with mean 60): the request-time
    # feature amount_log drifts; 150 rows are enough for the drift tests to decide
    rng = np.random.default_rng(7)
    batches = [[{"user_id": f"u{j}", "amount_now": float(a)} for j, a in enumerate(rng.gamma(2.0, 150.0, 50))] for _ in range(3)]
    request_ids = []
    app = create_app(ws, None, GatewayConfig(ratelimit_url="memory://", preload=("fraud",)))
    with TestClient(app) as c:
        auth = {"authorization": f"Bearer {keys['predict']}"}
        for batch in batches:  # first, so that the single requests are the newest; all to the champion
            assert c.post("/v1/models/fraud/predict", json={"instances": batch}, headers=auth).status_code == 200
        set_traffic(ws.catalog, "fraud", {"canary": {"ref": "challenger", "weight": 0.25}}, reason="try v2")
        for i, inst in enumerate(insts):
            r = c.post("/v1/models/fraud/predict", json={"instances": [inst]}, headers={**auth, "x-request-id": f"req-{i:03d}"})
            assert r.status_code == 200, r.text
            request_ids.append((r.json()["request_id"], r.json()["version"]))
    # delayed labels for the single requests, joined to them by request id
    outcomes = Contract("fraud_outcomes", columns=[Column("request_id", "string"), Column("instance", "int"), Column("is_fraud", "int")])
    _put(ws, pa.table({"request_id": [rid for rid, _ in request_ids], "instance": [0] * len(request_ids),
                       "is_fraud": [i % 2 for i in range(len(request_ids))]}), outcomes)
    # the server processes of the browser tests read the model from definitions.py
    (ws.root / "definitions.py").write_text(DEFINITIONS)
    # the champion's reference profile needs the model's definition, which this workspace
    # declares in memory only: build it here, where the pages' own processes will find it
    from strataml.monitoring import profile

    profile(ws, "fraud@v1")
    return {"keys": keys, "request_ids": request_ids, "requests": len(batches) + len(insts), "evil": evil.to_dict(), "v2": v2}
