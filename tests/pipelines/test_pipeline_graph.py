"""The graph is checked when a pipeline is declared, and problems name the user's line."""

from __future__ import annotations

from pathlib import Path

import pytest

import strataml as st
from strataml.errors import UserCodeError
from strataml.pipelines import PipelineError, create_run, get_run, list_runs
from strataml.spine import list_events

from .pipeline_ws import pipeline_workspace


def _line(root: Path, text: str) -> int:
    lines = (root / "definitions.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _declare_error(tmp_path: Path, body: str) -> str:
    ws = pipeline_workspace(tmp_path / "ws", body)
    with pytest.raises(UserCodeError) as info:
        ws.definitions  # noqa: B018 - loading definitions.py runs the checks
    ws.close()
    return info.value.message


def test_a_cycle_is_reported_at_the_pipeline_line(tmp_path: Path) -> None:
    message = _declare_error(
        tmp_path,
        """
        @st.step(inputs={"x": "step:b"})
        def a(x):
            return x

        @st.step(inputs={"y": "step:a"})
        def b(y):
            return y

        loop = st.Pipeline("loop", [a, b])
        """,
    )
    line = _line(tmp_path / "ws", 'st.Pipeline("loop"')
    assert message.startswith(f"definitions.py:{line}:") or f"definitions.py:{line}:" in message
    assert "cycle" in message and ("a -> b -> a" in message or "b -> a -> b" in message)


def test_a_missing_upstream_step_names_the_step_and_its_line(tmp_path: Path) -> None:
    message = _declare_error(
        tmp_path,
        """
        @st.step(inputs={"x": "step:nope"})
        def a(x):
            return x

        p = st.Pipeline("p", [a])
        """,
    )
    assert f"definitions.py:{_line(tmp_path / 'ws', 'st.Pipeline')}" in message
    assert f"step 'a' (definitions.py:{_line(tmp_path / 'ws', '@st.step')})" in message
    assert "no step 'nope'" in message


def test_a_signature_that_does_not_match_the_declaration_is_refused(tmp_path: Path) -> None:
    message = _declare_error(
        tmp_path,
        """
        @st.step(inputs={"rows": "dataset:transactions"})
        def a(data):
            return data

        p = st.Pipeline("p", [a])
        """,
    )
    assert "declares input 'rows' but its function has no parameter 'rows'" in message


def test_an_undeclared_parameter_without_default_is_refused(tmp_path: Path) -> None:
    message = _declare_error(
        tmp_path,
        """
        @st.step
        def a(threshold):
            return threshold

        p = st.Pipeline("p", [a])
        """,
    )
    assert "takes parameter 'threshold'" in message


def test_parameters_and_step_names_wire_themselves() -> None:
    @st.step
    def load(n: int) -> list[int]:
        return list(range(n))

    @st.step
    def total(load: list[int], scale: float = 1.0) -> float:
        return sum(load) * scale

    p = st.Pipeline("p", [total, load], params={"n": 3})
    assert p.order() == ["load", "total"]
    assert str(p.wiring["total"]["load"]) == "step:load"
    assert str(p.wiring["load"]["n"]) == "param:n"
    assert "scale" not in p.wiring["total"]  # its default is used


def test_a_produced_dataset_orders_its_readers_after_the_producer() -> None:
    @st.step(produces=["dataset:tx"])
    def ingest_it() -> int:
        return 1

    @st.step(inputs={"tx": "dataset:tx"})
    def use(tx: object) -> int:
        return 2

    assert st.Pipeline("p", [use, ingest_it]).order() == ["ingest_it", "use"]


def test_a_dataset_that_does_not_exist_is_reported_before_any_step_runs(tmp_path: Path) -> None:
    ws = pipeline_workspace(
        tmp_path / "ws",
        """
        @st.step(inputs={"tx": "dataset:transactions"})
        def count_rows(tx):
            mark("count_rows")
            return tx.rows

        p = st.Pipeline("p", [count_rows])
        """,
    )
    with pytest.raises(PipelineError) as info:
        st.run_pipeline(ws, "p")
    assert f"definitions.py:{_line(tmp_path / 'ws', 'st.Pipeline')}" in info.value.message
    assert "reads dataset 'transactions', which has no versions" in info.value.message
    run = list_runs(ws, "p")[0]
    assert run.state == "failed" and "transactions" in (run.error or "")
    assert not (tmp_path / "ws" / "marks" / "count_rows.count").exists()
    ws.close()


def test_create_run_is_idempotent_on_its_key_and_records_events(tmp_path: Path) -> None:
    ws = pipeline_workspace(
        tmp_path / "ws",
        """
        @st.step
        def a(n):
            return n

        p = st.Pipeline("p", [a], params={"n": 1})
        """,
    )
    first, created = create_run(
        ws, "p", params={"n": 2}, run_key="tick-1", trigger={"kind": "schedule"}
    )
    again, created_again = create_run(ws, "p", params={"n": 3}, run_key="tick-1")
    assert created and not created_again and again == first
    run = get_run(ws, first[:8])
    assert (run.state, run.params, run.trigger, run.run_key) == (
        "queued",
        {"n": 2},
        {"kind": "schedule"},
        "tick-1",
    )
    events = list_events(ws.catalog, kind="pipeline.run.created")
    assert [(e.subject, e.payload["run_id"], e.payload["run_key"]) for e in events] == [
        ("p", first, "tick-1")
    ]
    with pytest.raises(st.StrataError, match="no parameter"):
        create_run(ws, "p", params={"m": 1})
    ws.close()


def test_any_declared_kind_pipeline_with_build_runs(tmp_path: Path) -> None:
    ws = pipeline_workspace(
        tmp_path / "ws",
        """
        class Nightly:
            __strata_kind__ = "pipeline"

            def __init__(self, name, n):
                self.name, self.n = name, n

            def build(self, workspace):
                @st.step
                def count(n):
                    return n * 2

                return st.Pipeline(self.name, [count], params={"n": self.n})

        nightly = Nightly("nightly", 21)
        """,
    )
    run = st.run_pipeline(ws, "nightly")
    assert run.state == "succeeded", run.error
    assert run.step("count").output["value"] == 42  # type: ignore[index]
    ws.close()
