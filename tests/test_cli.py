"""The ``strata`` command line, run as a user would run it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import strataml as st
from strataml import monitoring, synth


def run(python: str, env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "strataml", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def ws(tmp_path: Path, python: str, cli_env: dict[str, str]) -> Path:
    r = run(python, cli_env, "init", str(tmp_path / "ws"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["workspace"] == str((tmp_path / "ws").resolve())
    return tmp_path / "ws"


def test_ingest_show_quarantine_diff_events(ws: Path, python: str, cli_env: dict[str, str]) -> None:
    first = synth.transactions(2000, seed=1, bad_fraction=0.02)
    synth.write_csv(first, ws / "a.csv")
    synth.write_csv(synth.transactions(500, seed=2, start_id=1900, bad_fraction=0.02), ws / "b.csv")

    r = run(python, cli_env, "ingest", "a.csv", "--contract", "transactions", "--json", cwd=ws)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert set(rep) >= {"dataset", "version", "rows_read", "accepted", "rejected", "duplicates", "rejected_by_rule", "quarantine"}
    assert rep["version"] == "v1" and rep["rows_read"] == 2000
    assert rep["accepted"] + rep["rejected"] + rep["duplicates"] == rep["rows_read"]
    assert rep["rejected"] == sum(rep["rejected_by_rule"].values()) - sum(
        0 for _ in ()
    ) or rep["rejected"] > 0

    r2 = json.loads(run(python, cli_env, "ingest", "b.csv", "-c", "transactions", "--json", cwd=ws).stdout)
    assert r2["version"] == "v2" and r2["duplicates"] >= 90

    show = json.loads(run(python, cli_env, "datasets", "show", "transactions@v2", "--json", cwd=ws).stdout)
    assert {"name", "version", "rows", "sha256", "schema", "contract_version", "parent", "created_at"} <= set(show)
    assert show["parent"] == "v1" and show["rows"] == rep["accepted"] + r2["accepted"]
    assert [c["name"] for c in show["schema"]] == ["tx_id", "user_id", "amount", "refund", "country", "merchant", "ts"]

    latest = json.loads(run(python, cli_env, "datasets", "show", "transactions@latest", "--json", cwd=ws).stdout)
    assert latest["sha256"] == show["sha256"]

    q = json.loads(run(python, cli_env, "datasets", "quarantine", "transactions@v1", "--json", cwd=ws).stdout)
    assert isinstance(q, list) and len(q) == rep["rejected"] + rep["duplicates"]
    assert all(isinstance(row["_errors"], list) and row["_errors"] for row in q)
    assert {"tx_id", "amount", "country"} <= set(q[0])

    d = json.loads(run(python, cli_env, "datasets", "diff", "transactions@v1", "transactions@v2", "--json", cwd=ws).stdout)
    assert d["rows_added"] == r2["accepted"] and d["rows_removed"] == 0

    lst = json.loads(run(python, cli_env, "datasets", "list", "--json", cwd=ws).stdout)
    assert lst[0]["name"] == "transactions" and lst[0]["latest"] == "v2"

    ev = json.loads(run(python, cli_env, "events", "--json", cwd=ws).stdout)
    assert [e["kind"] for e in ev] == ["contract.registered", "dataset.version_created", "dataset.version_created"]


def test_errors_are_messages_not_tracebacks(ws: Path, python: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    r = run(python, cli_env, "ingest", "missing.csv", "--contract", "transactions", cwd=ws)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = run(python, cli_env, "ingest", "x.csv", "--contract", "nope", cwd=ws)
    assert "no contract named 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = run(python, cli_env, "datasets", "show", "../../etc/passwd", cwd=ws)
    assert r.returncode == 2 and "invalid" in r.stderr
    r = run(python, cli_env, "datasets", "show", "transactions@v9", cwd=ws)
    assert r.returncode == 2 and "no dataset named" in r.stderr
    r = run(python, cli_env, "datasets", "list", cwd=tmp_path)
    assert r.returncode == 2 and "strata init" in r.stderr
    env = dict(cli_env, STRATA_THREADS="lots")
    r = run(python, env, "datasets", "list", cwd=ws)
    assert r.returncode == 2 and "STRATA_THREADS" in r.stderr


def test_definitions_that_exit_make_ingest_fail_naming_the_line(ws: Path, python: str, cli_env: dict[str, str]) -> None:
    (ws / "definitions.py").write_text("import strataml as st\nraise SystemExit(0)\n")
    (ws / "t.csv").write_text("id\n1\n")
    r = run(python, cli_env, "ingest", "t.csv", "--contract", "transactions", "--json", cwd=ws)
    assert r.returncode != 0 and r.stdout == ""
    assert f"{(ws / 'definitions.py').resolve()}:2: definitions.py raised SystemExit: 0" in r.stderr


def test_failed_batch_exits_non_zero_with_a_report(ws: Path, python: str, cli_env: dict[str, str]) -> None:
    (ws / "definitions.py").write_text(
        "import strataml as st\n"
        "tiny = st.Contract('tiny', key='id', columns=[st.Column('id', 'int'), st.Column('v', 'string', nullable=True, max_null_rate=0.1)])\n"
    )
    (ws / "t.csv").write_text("id,v\n1,\n2,\n3,a\n")
    r = run(python, cli_env, "ingest", "t.csv", "--contract", "tiny", "--json", cwd=ws)
    assert r.returncode == 3
    assert "v is null in 66.67% of rows" in r.stderr
    assert json.loads(r.stdout)["status"] == "failed"


def test_contracts_infer_drafts_pasteable_python(ws: Path, python: str, cli_env: dict[str, str]) -> None:
    synth.write_csv(synth.transactions(3000, seed=5, bad_fraction=0.0), ws / "sample.csv")
    r = run(python, cli_env, "contracts", "infer", "sample.csv", "--name", "tx", cwd=ws)
    assert r.returncode == 0, r.stderr
    code = r.stdout
    namespace: dict[str, object] = {}
    exec("import strataml as st\n" + code, namespace)  # the draft is valid Python that builds a Contract
    contract = namespace["tx"]
    cols = {c.name: c for c in contract.columns}  # type: ignore[attr-defined]
    assert cols["amount"].type == "float" and cols["amount"].min is not None
    assert cols["ts"].type == "timestamp"
    assert cols["country"].allowed == ("DE", "FR", "GB", "US")
    assert cols["refund"].nullable and cols["merchant"].nullable
    assert contract.key_columns == ("tx_id",)  # type: ignore[attr-defined]
    # and it accepts the file it was drafted from
    (ws / "definitions.py").write_text("import strataml as st\n" + code)
    r = run(python, cli_env, "ingest", "sample.csv", "--contract", "tx", "--json", cwd=ws)
    assert json.loads(r.stdout)["accepted"] == 3000


@pytest.mark.slow  # the whole demo, a minute or more
def test_demo_runs(python: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    r = run(python, {**cli_env, "COLUMNS": "200"}, "demo", "--dir", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "demo finished" in r.stdout
    out = r.stdout
    assert "sent 300 predictions over 8 connections" in out and "200: 300" in out
    # monitoring sees the shift of the second half: the amount's mean and a new country
    drifted = next(ln for ln in out.splitlines() if ln.startswith("drifted features:"))
    assert {"amount", "country"} <= set(drifted.split(":", 1)[1].replace(" ", "").split(","))
    assert "last_amount" not in drifted  # the user's history did not move
    # quality per version: the first half's delayed labels joined by request id, estimates beside them
    section = out[out.index("quality of fraud's live predictions"):out.index("slo fraud:")]
    quality = next(ln for ln in section.splitlines() if ln.lstrip("│ ").startswith("v1"))
    cells = [c.strip() for c in quality.split("│") if c.strip()]
    assert cells[:3] == ["v1", "453", "150"]  # 300 + 3 over HTTP, 150 through the queue
    assert all(0.0 < float(c) <= 1.0 for c in cells[3:7]), cells
    assert "alert fraud-amount-drift fired" in out and "feature_drift/amount" in out
    with st.Workspace.open(tmp_path / "demo") as ws:
        firing = monitoring.list_alerts(ws, state="firing")
        # the drift rule's alert, and the closed loop's: its second challenger was rolled back (below)
        assert [a.rule for a in firing] == ["fraud-amount-drift", "loop:fraud"]
        assert "rolled back" in firing[1].message
        assert st.dataset("fraud_outcomes@v1", ws).rows == 150
    # the closed loop: the alert retrained fraud, the challenger won live; the one that learned a labelling bug lost
    assert "round 1 ended in promoted, round 2 in rolled_back" in out
    with st.Workspace.open(tmp_path / "demo") as ws:
        kinds = [e.kind for e in st.list_events(ws.catalog, limit=None)]
        assert kinds.count("loop.promoted") == 1 and kinds.count("loop.rolled_back") == 1
        assert kinds.index("alert.fired") < kinds.index("pipeline.run.created") < kinds.index("loop.promoted")
        reg = st.get_model(ws, "fraud")
        assert reg["aliases"]["champion"] == 2 and len(reg["versions"]) == 3
        traffic = st.get_traffic(ws.catalog, "fraud")
        assert traffic is not None and traffic.canary is None  # the rolled back canary has no share left
