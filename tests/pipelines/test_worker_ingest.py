"""The ingesting worker turns event messages into dataset versions (contract, quarantine),
and a worker killed between ingesting and acknowledging ingests nothing twice."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import orjson
import pytest

import strataml as st
from strataml.data import list_versions
from strataml.spine import Outgoing

from .conftest import BACKENDS, publish, queue_url

# no key: a row ingested twice would be stored twice, so the row count proves once-only
DEFINITIONS = """import strataml as st

clicks = st.Contract("clicks", timestamp="ts", columns=[
    st.Column("user_id", "string"), st.Column("amount", "float"), st.Column("ts", "timestamp"),
])
"""
VIEW = """
user = st.Entity("user", key="user_id")
user_clicks = st.FeatureView("user_clicks", entity=user, source="clicks", ttl="30d", features=[
    st.Feature("spend_1d", agg="sum", column="amount", window="1d"),
    st.Feature("clicks_1d", agg="count", window="1d"),
])
"""


def event(i: int, amount: object = None) -> Outgoing:
    row = {
        "user_id": f"u{i % 7}",
        "amount": float(i) if amount is None else amount,
        "ts": f"2026-03-01T00:{i // 60:02d}:{i % 60:02d}",
    }
    return Outgoing(orjson.dumps(row), f"e{i}")


def run(
    python: str,
    env: dict[str, str],
    root: Path,
    url: str,
    queue: str,
    *extra: str,
    failpoint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    e = {**env, "STRATA_FAILPOINT": failpoint} if failpoint else env
    return subprocess.run(
        [
            python,
            "-m",
            "strataml",
            "worker",
            "--mode",
            "ingest",
            "--contract",
            "clicks",
            "--queue",
            queue,
            "--url",
            url,
            "-w",
            str(root),
            "--lease",
            "3",
            "--interval",
            "0.5",
            *extra,
        ],
        env=e,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_events_become_versions_once_despite_sigkill(
    backend: str, tmp_path: Path, python: str, cli_env: dict[str, str]
) -> None:
    root = tmp_path / "ws"
    st.Workspace.init(root, example=False).close()
    (root / "definitions.py").write_text(DEFINITIONS)
    url, queue = queue_url(backend, tmp_path), f"events-{uuid.uuid4().hex[:8]}"
    publish(url, queue, [event(i) for i in range(20)])
    killed = run(
        python,
        cli_env,
        root,
        url,
        queue,
        "--batch-rows",
        "20",
        "--idle-exit",
        "2",
        failpoint="worker.before_ack",
    )
    assert killed.returncode == -9, killed.stderr
    publish(url, queue, [*(event(i) for i in range(20, 45)), event(45, amount="not a number")])

    r = run(python, cli_env, root, url, queue, "--batch-rows", "20", "--idle-exit", "6")
    assert r.returncode == 0, r.stderr
    ws = st.Workspace.open(root)
    versions = list_versions(ws, "clicks")
    assert versions[0].rows == 20  # the batch ingested before the kill
    assert versions[-1].rows == 45, [
        v.rows for v in versions
    ]  # every good event once; the bad one quarantined
    assert len(versions) >= 2
    ws.close()


def test_events_update_online_features(
    tmp_path: Path, python: str, cli_env: dict[str, str]
) -> None:
    import datetime as dt

    from strataml.features import apply, get_online_features

    root = tmp_path / "ws"
    st.Workspace.init(root, example=False).close()
    (root / "definitions.py").write_text(DEFINITIONS + VIEW)
    ws = st.Workspace.open(root)
    apply(ws)
    ws.close()
    url, queue = queue_url("sqlite", tmp_path), f"clicks-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

    def click(i: int, user: str, amount: float) -> Outgoing:
        ts = (now - dt.timedelta(minutes=30 - i)).isoformat()
        return Outgoing(orjson.dumps({"user_id": user, "amount": amount, "ts": ts}), f"c{i}")

    publish(url, queue, [click(0, "a", 10.0), click(1, "a", 5.0), click(2, "b", 1.0)])
    r = run(python, cli_env, root, url, queue, "--materialize", "user_clicks", "--idle-exit", "1.5")
    assert r.returncode == 0, r.stderr
    ws = st.Workspace.open(root)
    got = get_online_features(
        ws, ["user_clicks"], [{"user_id": "a"}, {"user_id": "b"}, {"user_id": "c"}]
    )
    assert [(g["spend_1d"], g["clicks_1d"]) for g in got[:2]] == [(15.0, 2), (1.0, 1)]
    assert got[2]["spend_1d"] is None
    ws.close()

    publish(url, queue, [click(3, "b", 4.0)])  # the next batch moves b's features
    assert (
        run(
            python, cli_env, root, url, queue, "--materialize", "user_clicks", "--idle-exit", "1.5"
        ).returncode
        == 0
    )
    ws = st.Workspace.open(root)
    assert get_online_features(ws, ["user_clicks"], [{"user_id": "b"}])[0]["spend_1d"] == 5.0
    ws.close()
