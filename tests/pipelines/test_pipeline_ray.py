"""Pipeline steps as Ray tasks, on a real local Ray instance."""

from __future__ import annotations

from pathlib import Path

import pytest

import strataml as st

from .pipeline_ws import pipeline_workspace

pytest.importorskip("ray")


@pytest.mark.ray
@pytest.mark.slow
def test_steps_run_as_ray_tasks_and_fail_over_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRATA_RAY", raising=False)
    ws = pipeline_workspace(
        tmp_path / "ws",
        """
        @st.step
        def load(n):
            import ray

            print("in ray")
            return {"rows": list(range(n)), "task": ray.get_runtime_context().get_task_id() is not None}

        @st.step(retries=1, retry_on=[ConnectionError], backoff=0.01)
        def total(load):
            return sum(load["rows"])

        p = st.Pipeline("p", [load, total], params={"n": 5})
        """,
    )
    run = st.run_pipeline(ws, "p", engine="ray")
    assert run.state == "succeeded", run.error
    assert run.engine == "ray"
    assert run.step("load").output["value"]["task"] is True  # type: ignore[index]
    assert run.step("total").output["value"] == 10  # type: ignore[index]
    again = st.run_pipeline(ws, "p", engine="ray", params={"n": 5})
    assert [s.state for s in again.steps] == ["cached", "cached"]
    ws.close()
