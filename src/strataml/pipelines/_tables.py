"""The pipelines layer's catalog tables.

The pipeline tables (created by migration ``m0500_pipelines``).

``pipeline_runs`` holds one row per run (its state, parameters, what triggered it and
which process owns it while it runs); ``pipeline_steps`` one row per step of a run;
``pipeline_attempts`` one row per attempt of a step; ``pipeline_logs`` the lines a step
printed or logged; ``pipeline_cache`` the stored output of a step under the hash of its
inputs and code. State changes are also events in the event log.

The scheduler's catalog tables (created by migration ``m0510_scheduler``).

``scheduler_ticks`` holds one row per (schedule or trigger, tick time or event): the
deterministic run key of the run it starts (unique), the run's id once created, and how
far the tick got (``claimed`` → ``created`` → ``started`` → the run's final state).
``scheduler_cursors`` records, per schedule or trigger, how far its ticks or events are
handled. ``scheduler_leases`` are heartbeated rows: which scheduler process is in charge
of which schedule or trigger (PostgreSQL), or of the whole catalog (SQLite), and which
scheduler processes are alive.

The closed loop's state table (created by migration ``m0520_loop``).

``loop_runs`` holds one row per canary analysis: the deployment, the champion and
canary versions, the rules (as data), the state of the analysis and every round of
checks it made. The row is the whole state of the loop, so a process killed during a
canary resumes the watch from it; every change to it is written in the transaction
that changes the traffic or the aliases, with its event.

``active`` holds the deployment's name while the analysis is live and NULL once it has
ended: its unique index keeps one live analysis per deployment.
"""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import UtcDateTime, metadata

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(256), nullable=False, index=True),
    sa.Column("run_key", sa.String(512), nullable=True, unique=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("engine", sa.String(32), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # the process executing the run: host, pid and that process's start time (pids are reused)
    sa.Column("owner_host", sa.String(256), nullable=True),
    sa.Column("owner_pid", sa.Integer, nullable=True),
    sa.Column("owner_start", sa.String(64), nullable=True),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
    sa.Column("executions", sa.Integer, nullable=False, default=0),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
)

pipeline_steps = sa.Table(
    "pipeline_steps",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("pipeline_runs.id"), primary_key=True),
    sa.Column("step", sa.String(256), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=True, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

pipeline_attempts = sa.Table(
    "pipeline_attempts",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("step", sa.String(256), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

pipeline_logs = sa.Table(
    "pipeline_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, index=True),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ts", UtcDateTime(), nullable=False),
    sa.Column("stream", sa.String(16), nullable=False),
    sa.Column("line", sa.Text, nullable=False),
)

pipeline_cache = sa.Table(
    "pipeline_cache",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("output", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

TABLES = [pipeline_runs, pipeline_steps, pipeline_attempts, pipeline_logs, pipeline_cache]

scheduler_ticks = sa.Table(
    "scheduler_ticks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(400), nullable=False),
    sa.Column("tick_key", sa.String(400), nullable=False),
    sa.Column("pipeline", sa.String(256), nullable=False, index=True),
    sa.Column("run_key", sa.String(128), nullable=False, unique=True),
    sa.Column("due_at", UtcDateTime(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("claimed_by", sa.String(128), nullable=False),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("source", "tick_key", name="uq_scheduler_ticks_source_tick"),
)

scheduler_cursors = sa.Table(
    "scheduler_cursors",
    metadata,
    sa.Column("source", sa.String(400), primary_key=True),
    sa.Column("position", sa.String(400), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

scheduler_leases = sa.Table(
    "scheduler_leases",
    metadata,
    sa.Column("name", sa.String(400), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=True),
    sa.Column("acquired_at", UtcDateTime(), nullable=True),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("info", sa.JSON, nullable=False),
)

loop_runs = sa.Table(
    "loop_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(256), nullable=False, index=True),
    sa.Column("deployment", sa.String(256), nullable=False, index=True),
    sa.Column("active", sa.String(256), nullable=True, unique=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("champion_version", sa.Integer, nullable=True),
    sa.Column("canary_version", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("rounds", sa.JSON, nullable=False),
    sa.Column("decision", sa.JSON, nullable=True),
    sa.Column("pipeline_run", sa.String(64), nullable=True),
    sa.Column("trigger", sa.JSON, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("watch_until", UtcDateTime(), nullable=False),
    sa.Column("watch_limit", UtcDateTime(), nullable=False),
    sa.Column("next_check_at", UtcDateTime(), nullable=False),
    sa.Column("approval_until", UtcDateTime(), nullable=True),
    sa.Column("approved_by", sa.String(256), nullable=True),
    sa.Column("bake_until", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
)
