"""The pipeline tables (created by migration ``m0500_pipelines``).

``pipeline_runs`` holds one row per run (its state, parameters, what triggered it and
which process owns it while it runs); ``pipeline_steps`` one row per step of a run;
``pipeline_attempts`` one row per attempt of a step; ``pipeline_logs`` the lines a step
printed or logged; ``pipeline_cache`` the stored output of a step under the hash of its
inputs and code. State changes are also events in the event log.
"""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.schema import metadata

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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # the process executing the run: host, pid and that process's start time (pids are reused)
    sa.Column("owner_host", sa.String(256), nullable=True),
    sa.Column("owner_pid", sa.Integer, nullable=True),
    sa.Column("owner_start", sa.String(64), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
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
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

pipeline_attempts = sa.Table(
    "pipeline_attempts",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("step", sa.String(256), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

pipeline_logs = sa.Table(
    "pipeline_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, index=True),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

TABLES = [pipeline_runs, pipeline_steps, pipeline_attempts, pipeline_logs, pipeline_cache]
