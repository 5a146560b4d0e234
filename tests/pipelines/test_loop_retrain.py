"""st.Retrain: the closed loop as a pipeline — ingest, materialise, train, gate, canary —
whose canary is then watched by ticks and promoted or rolled back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.models import get_model
from strataml.pipelines import Retrain, advance_loops, list_loops, resolve_pipeline, run_pipeline
from strataml.serving import get_traffic
from strataml.spine import list_events

from .loop_setup import build_template, copy_with_loop, customers, rows, serve


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("loopr") / "tpl")


@pytest.fixture
def loop_ws(template: Path, tmp_path: Path) -> Iterator[st.Workspace]:
    ws = copy_with_loop(template, tmp_path / "ws", {"roc_auc": 0.5})
    yield ws
    ws.close()


def test_retrain_is_a_declared_pipeline_of_the_loop_steps(loop_ws: st.Workspace) -> None:
    declared = loop_ws.definitions.get("pipeline", "retrain_churn")
    assert isinstance(declared, Retrain) and declared.schedule == "0 * * * *"
    built = resolve_pipeline(loop_ws, "retrain_churn")
    assert built.order() == ["ingest", "materialize", "train", "gate", "canary"]
    assert built.params["model"] == "churn" and built.params["canary"]["weight"] == 0.5
    assert st.Retrain is Retrain
    with pytest.raises(st.StrataError, match="path and a contract"):
        Retrain("churn", sources=[{"path": "x.parquet"}])
    with pytest.raises(st.StrataError, match="takes triggers"):
        Retrain("churn", on=["labels"])
    with pytest.raises(st.StrataError):
        Retrain("churn", schedule="every full moon")
    assert Retrain("churn", on=[st.on_dataset("customers")]).triggers[0].kind == "dataset"
    approving = Retrain("churn", approval="4h")
    assert approving.canary.approval and approving.canary.approval_timeout == "4h"


def test_new_labels_retrain_gate_canary_and_promote(loop_ws: st.Workspace) -> None:
    ws = loop_ws
    pq.write_table(customers(1500, 42), Path(ws.root) / "incoming" / "batch1.parquet")
    run = run_pipeline(ws, "retrain_churn", trigger={"kind": "dataset", "dataset": "customers"})
    assert run.state == "succeeded", run.error
    assert {s.name for s in run.steps} == {"ingest", "materialize", "train", "gate", "canary"}
    m = get_model(ws, "churn")
    assert [v["version"] for v in m["versions"]] == [1, 2, 3] and m["aliases"]["challenger"] == 3
    assert (
        m["versions"][2]["lineage"]["labels"] == "customers@v2"
    )  # trained on what was just ingested
    gate = next(
        e for e in list_events(ws.catalog, kind="loop.gate.") if e.payload["pipeline_run"] == run.id
    )
    assert (
        gate.kind == "loop.gate.passed"
        and gate.payload["champion"] == 1
        and gate.payload["metrics"]["roc_auc"] >= 0.5
    )
    (loop,) = list_loops(ws, active=True)
    assert loop.pipeline_run == run.id and loop.canary_version == 3 and loop.champion_version == 1
    assert loop.trigger is not None and loop.trigger["pipeline_run"] == run.id
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is not None and t.canary.ref == "v3"
    serve(ws, rows(120, 31))
    advance_loops(ws, now=loop.started_at + dt.timedelta(seconds=1))
    (done,) = advance_loops(ws, now=loop.started_at + dt.timedelta(seconds=2))
    assert done.state == "promoted" and get_model(ws, "churn")["aliases"]["champion"] == 3
    # the run's timeline: the pipeline's steps, then the loop's decisions
    kinds = [
        e.kind
        for e in list_events(ws.catalog, limit=None)
        if e.kind.startswith(("pipeline.run", "loop."))
    ]
    assert (
        kinds.index("pipeline.run.started")
        < kinds.index("loop.gate.passed")
        < kinds.index("loop.canary.started")
        < kinds.index("loop.promoted")
    )
    # the dashboard's loop page shows the same timeline: the run's steps, then the decisions
    from starlette.testclient import TestClient

    from strataml.dashboard import standalone_app
    from strataml.serving import create_key

    key = create_key(ws.catalog, ["read"])[1]
    with TestClient(standalone_app(ws)) as c:
        page = c.get(f"/ui/loops/{loop.id}", headers={"authorization": f"Bearer {key}"}).text
    page = page[page.index("<h2>Timeline</h2>") :]
    shown = [
        page.index(s)
        for s in (
            "pipeline run started",
            "step train: succeeded",
            "gate passed",
            "canary started",
            "promoted",
        )
    ]
    assert shown == sorted(shown)


def test_a_challenger_that_fails_its_gate_is_never_deployed(template: Path, tmp_path: Path) -> None:
    ws = copy_with_loop(template, tmp_path / "strict", {"roc_auc": 0.999})
    try:
        run = run_pipeline(ws, "retrain_churn")
        assert run.state == "succeeded", run.error
        gate = next(e for e in list_events(ws.catalog, kind="loop.gate."))
        assert (
            gate.kind == "loop.gate.failed"
            and "below the minimum 0.999" in gate.payload["reasons"][0]
        )
        assert list_loops(ws) == [] and get_traffic(ws.catalog, "churn") is None
        assert get_model(ws, "churn")["aliases"]["champion"] == 1
    finally:
        ws.close()


def test_the_first_version_becomes_champion_without_a_canary(tmp_path: Path) -> None:
    from .loop_setup import put, write_loop_definitions

    st.Workspace.init(tmp_path / "first", example=False).close()
    write_loop_definitions(tmp_path / "first", {"roc_auc": 0.5})
    ws = st.Workspace.open(tmp_path / "first")
    try:
        put(ws, customers(1500, 5))
        run = run_pipeline(ws, "retrain_churn")
        assert run.state == "succeeded", run.error
        gate = next(e for e in list_events(ws.catalog, kind="loop.gate."))
        assert gate.kind == "loop.gate.passed" and gate.payload["aliases"] == {"champion": 1}
        assert get_model(ws, "churn")["aliases"] == {"champion": 1} and list_loops(ws) == []
    finally:
        ws.close()


@pytest.mark.slow
def test_new_labels_close_the_loop_under_the_scheduler(template: Path, tmp_path: Path) -> None:
    import threading
    import time

    from strataml.pipelines import Scheduler, get_run

    from .loop_setup import put

    ws = copy_with_loop(
        template,
        tmp_path / "sched",
        {"roc_auc": 0.5},
        when='on=[st.on_dataset("customers")]',
        watch="10s",
    )

    def wait(check, what: str, timeout: float = 400.0):  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not (value := check()):
            assert time.monotonic() < end, f"timed out waiting for {what}"
            time.sleep(0.2)
        return value

    first = Scheduler(ws, poll_s=0.1, lease_s=5)
    first.step()  # the trigger is seen from here on
    first.close()
    put(ws, customers(1500, 77))  # new labels arrive
    s = Scheduler(ws, poll_s=0.1, lease_s=5)
    thread = threading.Thread(target=s.run, daemon=True)
    thread.start()
    try:
        (loop,) = wait(lambda: list_loops(ws), "the canary")
        serve(ws, rows(120, 16))
        done = wait(
            lambda: (r := list_loops(ws)[0]).state in ("promoted", "rolled_back") and r,
            "the decision",
        )
    finally:
        s.stop()
        thread.join(120)
    try:
        assert done.state == "promoted" and done.canary_version == 3, done.decision
        run = get_run(ws, loop.pipeline_run)
        assert (run.trigger["kind"], run.trigger["dataset"], run.trigger["version"]) == (
            "dataset",
            "customers",
            "v2",
        )
        assert get_model(ws, "churn")["aliases"]["champion"] == 3
    finally:
        ws.close()
