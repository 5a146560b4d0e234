"""Pipelines: DAGs of steps with caching, retries and timeouts; the run store; queue workers;
and the closed loop: retrain, gate, canary, promote or roll back.

A pipeline is declared in ``definitions.py`` (:class:`Pipeline`, :func:`step`); runs are
recorded in the catalog (:func:`create_run`, :func:`get_run`, :func:`list_runs`) and every
state change is an event. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strataml.spine import lazy_exports

if TYPE_CHECKING:
    from strataml.pipelines._builtin import (
        DriftDetected,
        drift_step,
        export_step,
        ingest_step,
        materialize_step,
        score_step,
        train_step,
    )
    from strataml.pipelines._cache import StepOutputError
    from strataml.pipelines._canary import Canary, Check
    from strataml.pipelines._checks import CheckResult
    from strataml.pipelines._executor import execute_run, resume_run, run_pipeline
    from strataml.pipelines._ledger import Ledger
    from strataml.pipelines._loop import abort, advance, advance_loops, approve, start_canary
    from strataml.pipelines._loop_store import LoopRun, get_loop, list_loops
    from strataml.pipelines._pipeline import Pipeline, Step, step
    from strataml.pipelines._recovery import cancel_run, recover_runs
    from strataml.pipelines._refs import Input, PipelineError
    from strataml.pipelines._retrain import Retrain
    from strataml.pipelines._runs import (
        PipelineRun,
        StepRun,
        create_run,
        get_run,
        list_runs,
        resolve_pipeline,
        run_attempts,
        run_logs,
    )
    from strataml.pipelines._schedule import Schedule
    from strataml.pipelines._scheduler import Scheduler, run_scheduler
    from strataml.pipelines._scheduler_status import scheduler_status
    from strataml.pipelines._task import StepContext
    from strataml.pipelines._triggers import (
        Trigger,
        on_alert,
        on_dataset,
        on_files,
        on_pipeline,
        on_queue,
    )
    from strataml.pipelines._worker import Worker, WorkerConfig, run_worker

_EXPORTS = {
    "Canary": "_canary",
    "Check": "_canary",
    "CheckResult": "_checks",
    "abort": "_loop",
    "advance": "_loop",
    "advance_loops": "_loop",
    "approve": "_loop",
    "start_canary": "_loop",
    "LoopRun": "_loop_store",
    "get_loop": "_loop_store",
    "list_loops": "_loop_store",
    "DriftDetected": "_builtin",
    "drift_step": "_builtin",
    "export_step": "_builtin",
    "ingest_step": "_builtin",
    "materialize_step": "_builtin",
    "score_step": "_builtin",
    "train_step": "_builtin",
    "StepOutputError": "_cache",
    "execute_run": "_executor",
    "resume_run": "_executor",
    "run_pipeline": "_executor",
    "cancel_run": "_recovery",
    "recover_runs": "_recovery",
    "StepContext": "_task",
    "Pipeline": "_pipeline",
    "Step": "_pipeline",
    "step": "_pipeline",
    "Input": "_refs",
    "PipelineError": "_refs",
    "Retrain": "_retrain",
    "PipelineRun": "_runs",
    "StepRun": "_runs",
    "create_run": "_runs",
    "get_run": "_runs",
    "list_runs": "_runs",
    "resolve_pipeline": "_runs",
    "run_attempts": "_runs",
    "run_logs": "_runs",
    "Schedule": "_schedule",
    "Scheduler": "_scheduler",
    "run_scheduler": "_scheduler",
    "scheduler_status": "_scheduler_status",
    "Trigger": "_triggers",
    "on_alert": "_triggers",
    "on_dataset": "_triggers",
    "on_files": "_triggers",
    "on_pipeline": "_triggers",
    "on_queue": "_triggers",
    "Ledger": "_ledger",
    "Worker": "_worker",
    "WorkerConfig": "_worker",
    "run_worker": "_worker",
}
lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Canary",
    "Check",
    "CheckResult",
    "DriftDetected",
    "Input",
    "Ledger",
    "LoopRun",
    "Pipeline",
    "PipelineError",
    "PipelineRun",
    "Retrain",
    "Schedule",
    "Scheduler",
    "Step",
    "StepContext",
    "StepOutputError",
    "StepRun",
    "Trigger",
    "Worker",
    "WorkerConfig",
    "abort",
    "advance",
    "advance_loops",
    "approve",
    "cancel_run",
    "create_run",
    "drift_step",
    "execute_run",
    "export_step",
    "get_loop",
    "get_run",
    "ingest_step",
    "list_loops",
    "list_runs",
    "materialize_step",
    "on_alert",
    "on_dataset",
    "on_files",
    "on_pipeline",
    "on_queue",
    "recover_runs",
    "resolve_pipeline",
    "resume_run",
    "run_attempts",
    "run_logs",
    "run_pipeline",
    "run_scheduler",
    "run_worker",
    "scheduler_status",
    "score_step",
    "start_canary",
    "step",
    "train_step",
]
