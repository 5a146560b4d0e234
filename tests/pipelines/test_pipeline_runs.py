"""Running pipelines: stored outputs, the cache, retries, timeouts, parallel steps, cancel, resume."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import strataml as st
from strataml.pipelines import cancel_run, get_run, resume_run, run_attempts, run_logs
from strataml.pipelines._cache import load_value
from strataml.pipelines._tables import pipeline_cache
from strataml.spine import list_events

from .pipeline_ws import counts, pipeline_workspace

BASIC = """
@st.step
def load(n):
    mark("load")
    print("loading", n)
    return {"rows": list(range(n))}


@st.step(inputs={"data": "step:load"})
def frame(data):
    import pandas as pd

    mark("frame")
    return pd.DataFrame({"x": data["rows"]})


@st.step
def total(frame, load, scale=1.0):
    import logging

    mark("total")
    logging.getLogger("total").info("summing %d rows", len(frame))
    return float(frame["x"].sum()) * scale + len(load["rows"])


basic = st.Pipeline("basic", [load, frame, total], params={"n": 4})
"""


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "ws" / "marks"
    monkeypatch.setenv("STRATA_TEST_MARKS", str(folder))
    return tmp_path / "ws"


def test_a_run_stores_outputs_and_logs_and_a_rerun_with_nothing_changed_does_nothing(
    marks: Path,
) -> None:
    ws = pipeline_workspace(marks, BASIC)
    run = st.run_pipeline(ws, "basic")
    assert run.state == "succeeded", run.error
    assert [s.state for s in run.steps] == ["succeeded"] * 3
    frame = load_value(ws, run.step("frame").output or {})
    assert list(frame["x"]) == [0, 1, 2, 3]  # a DataFrame, stored as Parquet
    assert run.step("frame").output["kind"] == "table"  # type: ignore[index]
    assert run.step("total").output["value"] == 6.0 + 4  # type: ignore[index]
    lines = [(x["step"], x["stream"], x["line"]) for x in run_logs(ws, run.id)]
    assert ("load", "stdout", "loading 4") in lines
    assert ("total", "log", "INFO total: summing 4 rows") in lines
    kinds = [
        e.kind
        for e in list_events(ws.catalog, kind="pipeline.")
        if e.payload.get("run_id") == run.id
    ]
    assert kinds[0] == "pipeline.run.created" and kinds[1] == "pipeline.run.started"
    assert kinds[-1] == "pipeline.run.succeeded" and kinds.count("pipeline.step.succeeded") == 3

    again = st.run_pipeline(ws, "basic")
    assert again.state == "succeeded" and [s.state for s in again.steps] == ["cached"] * 3
    assert (counts(marks, "load"), counts(marks, "frame"), counts(marks, "total")) == (1, 1, 1)
    assert again.step("total").output == run.step("total").output

    # a changed parameter re-runs the step reading it and those downstream of it
    changed = st.run_pipeline(ws, "basic", params={"n": 5})
    assert [s.state for s in changed.steps] == ["succeeded"] * 3
    assert changed.step("total").output["value"] == 10.0 + 5  # type: ignore[index]
    ws.close()

    # changed code re-runs that step; steps upstream of it are reused
    body = BASIC.replace("* scale + len", "* scale * 2 + len")
    ws = pipeline_workspace(marks, body)
    edited = st.run_pipeline(ws, "basic")
    assert {s.name: s.state for s in edited.steps} == {
        "load": "cached",
        "frame": "cached",
        "total": "succeeded",
    }
    assert edited.step("total").output["value"] == 12.0 + 4  # type: ignore[index]
    ws.close()


FLAKY = """
@st.step(retries=3, retry_on=[ConnectionError], backoff=0.01, max_backoff=0.05)
def flaky():
    mark("flaky")
    if count("flaky") < 3:
        raise ConnectionError("the source is not answering")
    return "ok"


@st.step(inputs={"x": "step:flaky"}, retries=3, retry_on=[ConnectionError], backoff=0.01)
def broken(x):
    mark("broken")
    raise ValueError("bad row 7")


@st.step
def after(broken):
    mark("after")
    return 1


p = st.Pipeline("p", [flaky, broken, after])
"""


def test_retries_only_for_declared_errors_and_a_failed_step_leaves_no_output(marks: Path) -> None:
    ws = pipeline_workspace(marks, FLAKY)
    run = st.run_pipeline(ws, "p")
    assert run.state == "failed"
    flaky, broken, after = run.step("flaky"), run.step("broken"), run.step("after")
    assert (flaky.state, flaky.attempts, flaky.output["value"]) == ("succeeded", 3, "ok")  # type: ignore[index]
    attempts = [(a["step"], a["attempt"], a["state"]) for a in run_attempts(ws, run.id)]
    assert attempts[:3] == [
        ("flaky", 1, "failed"),
        ("flaky", 2, "failed"),
        ("flaky", 3, "succeeded"),
    ]
    retried = [
        e
        for e in list_events(ws.catalog, kind="pipeline.step.retrying")
        if e.payload["run_id"] == run.id
    ]
    assert len(retried) == 2 and "ConnectionError" in retried[0].payload["error"]
    # ValueError is not declared retryable: one attempt, and nothing stored
    assert (broken.state, broken.attempts, broken.output) == ("failed", 1, None)
    raise_line = next(
        i
        for i, line in enumerate((marks / "definitions.py").read_text().splitlines(), 1)
        if "bad row 7" in line
    )
    assert f"definitions.py:{raise_line}: ValueError: bad row 7" in (broken.error or "")
    assert "step 'broken' failed" in (run.error or "")
    assert (after.state, counts(marks, "after")) == ("skipped", 0)
    with ws.catalog.read() as conn:
        cached_steps = set(conn.execute(sa.select(pipeline_cache.c.step)).scalars())
    assert cached_steps == {"flaky"}
    ws.close()


def test_a_step_past_its_timeout_is_killed_and_fails(marks: Path) -> None:
    ws = pipeline_workspace(
        marks,
        """
        @st.step(timeout="1s")
        def slow():
            mark("slow")
            wait_for("never", 120)
            return 1

        p = st.Pipeline("p", [slow])
        """,
    )
    run = st.run_pipeline(ws, "p")
    assert run.state == "failed" and "timed out after 1 s" in (run.step("slow").error or "")
    assert [a["state"] for a in run_attempts(ws, run.id)] == ["timeout"]
    ws.close()


def test_independent_steps_run_at_the_same_time(marks: Path) -> None:
    # each step waits for the other to start: they finish only if they run in parallel
    ws = pipeline_workspace(
        marks,
        """
        @st.step(cache=False)
        def left():
            (MARKS / "left-started").touch()
            wait_for("right-started", 60)
            return "l"

        @st.step(cache=False)
        def right():
            (MARKS / "right-started").touch()
            wait_for("left-started", 60)
            return "r"

        @st.step
        def both(left, right):
            return left + right

        p = st.Pipeline("p", [left, right, both])
        """,
    )
    run = st.run_pipeline(ws, "p", workers=2)
    assert run.state == "succeeded", run.error
    assert run.step("both").output["value"] == "lr"  # type: ignore[index]
    ws.close()


WAITING = """
@st.step
def first():
    mark("first")
    return 1


@st.step
def second(first):
    mark("second")
    (MARKS / "second-started").touch()
    if not (MARKS / "go").exists():
        if os.environ.get("STRATA_TEST_WAIT"):
            wait_for("go", 120)
        else:
            raise RuntimeError("go is missing")
    return first + 1


p = st.Pipeline("p", [first, second])
"""


def test_resume_continues_from_the_last_completed_step(marks: Path) -> None:
    ws = pipeline_workspace(marks, WAITING)
    run = st.run_pipeline(ws, "p")
    assert run.state == "failed" and run.step("first").state == "succeeded"
    (marks / "marks" / "go").touch()
    resumed = resume_run(ws, run.id)
    assert resumed.id == run.id and resumed.state == "succeeded"
    assert resumed.step("second").output["value"] == 2  # type: ignore[index]
    assert counts(marks, "first") == 1 and counts(marks, "second") == 2
    started = [
        e
        for e in list_events(ws.catalog, kind="pipeline.run.started")
        if e.payload["run_id"] == run.id
    ]
    assert started[-1].payload["completed_steps"] == ["first"]
    with pytest.raises(st.StrataError, match="already succeeded"):
        resume_run(ws, run.id)
    ws.close()


def test_cancel_kills_the_running_step(marks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_TEST_WAIT", "1")
    ws = pipeline_workspace(marks, WAITING)
    result: list[st.pipelines.PipelineRun] = []  # type: ignore[name-defined]
    runner = threading.Thread(target=lambda: result.append(st.run_pipeline(ws, "p")))
    runner.start()
    started = marks / "marks" / "second-started"
    for _ in range(1200):
        if started.exists():
            break
        threading.Event().wait(0.05)
    run_id = get_run(ws, st.pipelines.list_runs(ws, "p")[0].id).id  # type: ignore[attr-defined]
    cancelled = cancel_run(ws, run_id, wait=60)
    runner.join(60)
    assert cancelled.state == "cancelled" and result[0].state == "cancelled"
    assert (
        result[0].step("first").state == "succeeded"
        and result[0].step("second").state == "cancelled"
    )
    assert [
        e.payload["run_id"] for e in list_events(ws.catalog, kind="pipeline.run.cancelled")
    ] == [run_id]
    ws.close()


DATASET = """
tx = st.Contract(
    "tx", key="id", columns=[st.Column("id", "string", unique=True), st.Column("amount", "float", min=0)]
)


@st.step(inputs={"rows": "dataset:tx"})
def big(rows, threshold):
    mark("big")
    df = rows.to_pandas()
    return {"ref": rows.ref, "big": int((df.amount > threshold).sum())}


p = st.Pipeline("p", [big], params={"threshold": 10.0})
"""


def test_a_new_dataset_version_reruns_the_steps_reading_it(marks: Path) -> None:
    ws = pipeline_workspace(marks, DATASET)
    (marks / "a.csv").write_text("id,amount\na,5\nb,50\n")
    st.ingest(ws, str(marks / "a.csv"), contract="tx")
    first = st.run_pipeline(ws, "p")
    assert first.step("big").output["value"] == {"ref": "tx@v1", "big": 1}  # type: ignore[index]
    assert st.run_pipeline(ws, "p").step("big").state == "cached"
    (marks / "b.csv").write_text("id,amount\nc,500\nd,70\n")
    st.ingest(ws, str(marks / "b.csv"), contract="tx")
    third = st.run_pipeline(ws, "p")
    assert third.step("big").state == "succeeded"
    assert third.step("big").output["value"]["ref"] == "tx@v2"  # type: ignore[index]
    assert first.step("big").inputs["rows"]["dataset"] == "tx@v1"
    assert counts(marks, "big") == 2
    ws.close()


def test_an_output_that_cannot_be_stored_fails_the_step_and_writes_nothing(marks: Path) -> None:
    ws = pipeline_workspace(
        marks,
        """
        @st.step(outputs=["table", "tags"])
        def split():
            import pandas as pd

            return {"table": pd.DataFrame({"a": [1, 2]}), "tags": {"x", "y"}}

        p = st.Pipeline("p", [split])
        """,
    )
    store = Path(ws.resolve_url(ws.settings.artifacts))
    before = sorted(p.name for p in store.rglob("*") if p.is_file()) if store.exists() else []
    run = st.run_pipeline(ws, "p")
    assert run.state == "failed"
    assert "returned a set, which cannot be stored" in (run.step("split").error or "")
    assert run.step("split").output is None
    after = sorted(p.name for p in store.rglob("*") if p.is_file()) if store.exists() else []
    assert after == before  # the DataFrame output was not written either
    ws.close()


def test_a_worker_that_dies_fails_its_step_and_is_replaced(marks: Path) -> None:
    ws = pipeline_workspace(
        marks,
        """
        @st.step
        def crash():
            if not (MARKS / "crashed").exists():
                (MARKS / "crashed").touch()
                os._exit(7)
            return "back"

        p = st.Pipeline("p", [crash])
        """,
    )
    run = st.run_pipeline(ws, "p")
    assert run.state == "failed" and "the worker process exited with code 7" in (run.error or "")
    resumed = resume_run(ws, run.id)
    assert resumed.state == "succeeded" and resumed.step("crash").output["value"] == "back"  # type: ignore[index]
    ws.close()
