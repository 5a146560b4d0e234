"""``strata monitor quality|slo|check|alerts`` with rules declared in definitions.py."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

import strataml as st

from .test_alerts import _traffic

DEFINITIONS = '''
import strataml as st
from lightgbm import LGBMClassifier

customers = st.Contract("customers", key="id", columns=[
    st.Column("id", "string"), st.Column("tenure", "float"), st.Column("spend", "float", nullable=True),
    st.Column("plan", "string"), st.Column("churned", "int"),
])
churn = st.Model("churn", labels="customers", target="churned", columns=["tenure", "spend", "plan"],
                 estimator=LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1))
errors = st.Alert("churn-errors", model="churn", metric="error_rate", threshold=0.1, severity="page")
'''


@pytest.mark.slow
def test_cli_quality_slo_check_and_alerts(mon_ws: st.Workspace, cli_env: dict[str, str]) -> None:
    (mon_ws.root / "definitions.py").write_text(DEFINITIONS)
    _traffic(mon_ws, good=20, bad=5)

    def run(*args: str) -> dict[str, object]:
        r = subprocess.run([sys.executable, "-m", "strataml", "monitor", *args, "--workspace", str(mon_ws.root), "--json"],
                           capture_output=True, text=True, env=cli_env, timeout=120)
        assert r.returncode == 0, r.stderr
        return orjson.loads(r.stdout)  # type: ignore[no-any-return]

    check = run("check")
    assert [e["kind"] for e in check["events"]] == ["fired"] and check["events"][0]["rule"] == "churn-errors"  # type: ignore[index]
    assert run("check")["events"] == []
    firing = run("alerts", "--state", "firing")["alerts"]
    assert [a["rule"] for a in firing] == ["churn-errors"]  # type: ignore[union-attr, index]
    slo = run("slo", "churn", "--bucket", "1h")
    assert sum(s["requests"] for s in slo["series"]) == 20 and sum(s["errors"] for s in slo["series"]) == 5  # type: ignore[union-attr, index]
    q = run("quality", "churn")
    [row] = q["rows"]  # type: ignore[misc]
    assert row["unlabelled"] == 20 and 0.5 < row["estimated"]["roc_auc"] <= 1.0
