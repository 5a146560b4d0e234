"""The scheduler in this process: schedules across restarts, each trigger kind, status, bad input."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

import strataml as st
from strataml.errors import ConfigError
from strataml.pipelines import Scheduler, run_pipeline, scheduler_status
from strataml.spine import Outgoing, append_event, list_events, open_queue

from .scheduler_ws import (
    assert_contiguous,
    assert_one_run_per_tick,
    env_for,
    marks,
    runs_of,
    scheduler_workspace,
    start_scheduler,
    stop,
    ticks_of,
    wait_until,
)

EVERY_SECOND = """
@st.step
def work():
    mark("work")


tick = st.Pipeline("tick", [work], schedule=st.Schedule(every="1s", catchup="{catchup}", grace="0s"))
"""


def run_for(ws: st.Workspace, until: object, what: str, **options: object) -> Scheduler:
    """Run a scheduler in a thread until ``until()`` holds, then stop it cleanly."""
    s = Scheduler(ws, poll_s=0.05, lease_s=3, **options)  # type: ignore[arg-type]
    thread = threading.Thread(target=s.run, daemon=True)
    thread.start()
    try:
        wait_until(until, what)  # type: ignore[arg-type]
    finally:
        s.stop()
        thread.join(120)
    assert not thread.is_alive()
    return s


def one_pass(ws: st.Workspace) -> None:
    """One pass of a scheduler that then stops (and gives its lease back)."""
    s = Scheduler(ws, poll_s=0.05, lease_s=3)
    s.step()
    s.close()


def finished(ws: st.Workspace, pipeline: str, n: int) -> bool:
    """At least ``n`` ticks of ``pipeline`` have a run that succeeded."""
    return sum(t["state"] == "succeeded" for t in ticks_of(ws, pipeline)) >= n


def succeeded(ws: st.Workspace, pipeline: str) -> int:
    return sum(r["state"] == "succeeded" for r in runs_of(ws, pipeline))


def test_a_schedule_runs_each_tick_once_across_restarts_and_catches_up(tmp_path: Path) -> None:
    ws = scheduler_workspace(tmp_path / "ws", EVERY_SECOND.replace("{catchup}", "all"))
    run_for(ws, lambda: finished(ws, "tick", 2), "two ticks")
    first = ticks_of(ws, "tick")
    time.sleep(
        2.5
    )  # stopped: ticks fall due while nobody schedules; the next scheduler runs them all
    run_for(ws, lambda: finished(ws, "tick", len(first) + 4), "more ticks")
    ticks = assert_one_run_per_tick(ws, "tick")
    assert_contiguous(ticks, 1.0)
    assert [t["id"] for t in ticks[: len(first)]] == [t["id"] for t in first]
    assert succeeded(ws, "tick") >= len(first) + 4
    assert all(t["trigger"]["kind"] == "schedule" for t in ticks)


def test_missed_ticks_are_skipped_by_default_and_recorded(tmp_path: Path) -> None:
    ws = scheduler_workspace(tmp_path / "ws", EVERY_SECOND.replace("{catchup}", "none"))
    run_for(ws, lambda: finished(ws, "tick", 1), "a tick")
    before = ticks_of(ws, "tick")
    time.sleep(3)
    run_for(ws, lambda: finished(ws, "tick", len(before) + 1), "a tick after the restart")
    ticks = assert_one_run_per_tick(ws, "tick")
    gap = [(b["due_at"] - a["due_at"]).total_seconds() for a, b in itertools.pairwise(ticks)]
    assert max(gap) >= 3  # the ticks due while stopped did not run
    skipped = list_events(ws.catalog, kind="scheduler.ticks_skipped")
    assert skipped and skipped[-1].payload["policy"] == "none" and skipped[-1].subject == "tick"


def test_dataset_and_pipeline_triggers_start_one_run_per_event(tmp_path: Path) -> None:
    ws = scheduler_workspace(
        tmp_path / "ws",
        """
        readings = st.Contract("readings", key="id", columns=[st.Column("id", "string"), st.Column("v", "float")])


        @st.step
        def retrain():
            mark("retrain")


        @st.step
        def report():
            mark("report")


        on_new = st.Pipeline("on_new", [retrain], triggers=[st.on_dataset("readings")])
        after = st.Pipeline("after", [report], triggers=[st.on_pipeline("on_new", state="succeeded")])
        """,
    )
    csv = tmp_path / "a.csv"
    csv.write_text("id,v\na,1.0\nb,2.0\n")
    st.ingest(ws, str(csv), contract="readings")  # before the trigger was first seen: not a run
    s = Scheduler(ws, poll_s=0.05, lease_s=3)
    s.step()
    assert ticks_of(ws, "on_new") == []
    for i in range(2):
        csv.write_text(f"id,v\nc{i},3.0\n")
        st.ingest(ws, str(csv), contract="readings")
    s.close()
    run_for(ws, lambda: finished(ws, "on_new", 2) and finished(ws, "after", 2), "both pipelines")
    new = assert_one_run_per_tick(ws, "on_new")
    assert [t["trigger"]["version"] for t in new] == ["v2", "v3"]
    after = assert_one_run_per_tick(ws, "after")
    assert sorted(t["trigger"]["run_id"] for t in after) == sorted(t["run_id"] for t in new)
    # a later run of the upstream pipeline started by hand triggers too
    run_pipeline(ws, "on_new")
    run_for(ws, lambda: finished(ws, "after", 3), "a third downstream run")
    assert len(assert_one_run_per_tick(ws, "after")) == 3


def test_alert_triggers_follow_the_alert_events(tmp_path: Path) -> None:
    ws = scheduler_workspace(
        tmp_path / "ws",
        """
        @st.step
        def page():
            mark("page")


        fired = st.Pipeline("fired", [page], triggers=[st.on_alert("fraud-drift")])
        any_model = st.Pipeline("any_model", [page], triggers=[st.on_alert(model="fraud", state="any")])
        rollbacks = st.Pipeline("rollbacks", [page], triggers=[st.on_alert("loop:fraud")])
        """,
    )
    one_pass(ws)  # the triggers start at the end of the log

    def alert(kind: str, rule: str, model: str) -> None:
        # the events monitoring appends when an alert rule changes state (monitoring/alerts.py)
        with ws.catalog.write() as conn:
            append_event(
                conn,
                f"alert.{kind}",
                model,
                {
                    "rule": rule,
                    "severity": "warning",
                    "metric": "psi",
                    "value": 0.4,
                    "threshold": 0.2,
                    "message": "m",
                    "details": {},
                },
            )

    alert("fired", "fraud-drift", "fraud")
    alert("resolved", "fraud-drift", "fraud")
    alert("fired", "other-rule", "churn")
    alert("fired", "loop:fraud", "fraud")  # a closed loop rolled its canary back
    run_for(ws, lambda: finished(ws, "fired", 1) and finished(ws, "any_model", 2) and finished(ws, "rollbacks", 1), "alert runs")
    fired = assert_one_run_per_tick(ws, "fired")
    assert [(t["trigger"]["rule"], t["trigger"]["state"]) for t in fired] == [
        ("fraud-drift", "fired")
    ]
    both = assert_one_run_per_tick(ws, "any_model")
    assert [t["trigger"]["state"] for t in both] == ["fired", "resolved"]  # not the loop's rollback
    assert [t["trigger"]["rule"] for t in assert_one_run_per_tick(ws, "rollbacks")] == ["loop:fraud"]


def test_files_trigger_runs_once_per_new_file_by_name_and_size(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "old.csv").write_text("there before\n")
    ws = scheduler_workspace(
        tmp_path / "ws",
        f"""
        @st.step
        def load():
            mark("load")


        files = st.Pipeline("files", [load], triggers=[st.on_files({str(landing)!r}, "*.csv")])
        """,
    )
    one_pass(ws)  # old.csv was there first: recorded, not run
    (landing / "a.csv").write_text("1\n")
    (landing / "b.csv").write_text("22\n")
    (landing / "ignored.txt").write_text("not a csv\n")
    run_for(ws, lambda: finished(ws, "files", 2), "two files")
    (landing / "a.csv").write_text("1\n2\n3\n")  # rewritten: other content, another run
    run_for(ws, lambda: finished(ws, "files", 3), "the rewritten file")
    ticks = assert_one_run_per_tick(ws, "files")
    assert sorted((t["trigger"]["path"], t["trigger"]["size"]) for t in ticks) == [
        ("a.csv", 2),
        ("a.csv", 6),
        ("b.csv", 3),
    ]
    assert [t["trigger"]["path"] for t in ticks_of(ws, "files") if t["state"] == "skipped"] == [
        "old.csv"
    ]


def test_queue_trigger_runs_once_per_message_with_its_params(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    ws = scheduler_workspace(
        tmp_path / "ws",
        f"""
        @st.step(cache=False)
        def handle(who="nobody"):
            mark("handle", who)


        queued = st.Pipeline("queued", [handle], params={{"who": "nobody"}},
                             triggers=[st.on_queue("requests", url={url!r})])
        """,
    )

    async def publish() -> None:
        q = open_queue(url)
        await q.publish_many(
            "requests", [Outgoing(orjson.dumps({"params": {"who": w}}), id=f"m-{w}") for w in "abc"]
        )
        await q.publish("requests", b"not json", id="m-raw")
        await q.close()

    asyncio.run(publish())
    run_for(ws, lambda: finished(ws, "queued", 4), "four messages")
    ticks = assert_one_run_per_tick(ws, "queued")
    assert sorted(t["trigger"]["message_id"] for t in ticks) == ["m-a", "m-b", "m-c", "m-raw"]
    assert sorted(marks(ws.root, "handle")) == ["a", "b", "c", "nobody"]

    async def left() -> int:
        q = open_queue(url)
        got = await q.fetch("requests", 10, wait=0.2)
        await q.close()
        return len(got)

    assert asyncio.run(left()) == 0  # acknowledged once recorded


def test_status_json_shows_schedules_triggers_leases_and_last_runs(tmp_path: Path) -> None:
    ws = scheduler_workspace(
        tmp_path / "ws",
        """
        @st.step
        def work():
            return 1


        nightly = st.Pipeline("nightly", [work], schedule=st.Schedule("30 2 * * *", tz="Europe/Berlin"),
                              triggers=[st.on_dataset("transactions")])
        """,
    )
    proc = start_scheduler(ws.root)
    try:
        wait_until(lambda: scheduler_status(ws)["schedulers"], "the scheduler to register")
        out = subprocess.run(
            [sys.executable, "-m", "strataml", "scheduler", "status", "--json"],
            env=env_for(ws.root),
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(out.stdout)
        [schedule] = data["schedules"]
        assert schedule["pipeline"] == "nightly" and schedule["tz"] == "Europe/Berlin"
        assert schedule["next_tick"].endswith(("00:30:00+00:00", "01:30:00+00:00"))
        assert schedule["held_by"] == data["schedulers"][0]["holder"]
        assert [t["trigger"] for t in data["triggers"]] == ["on_dataset('transactions')"]
        assert [lease["name"] for lease in data["leases"]] == ["writer"] and data["leases"][0][
            "alive"
        ]
        human = subprocess.run(
            [sys.executable, "-m", "strataml", "scheduler", "status"],
            env=env_for(ws.root),
            capture_output=True,
            text=True,
            check=True,
        )
        assert "nightly" in human.stdout and "schedules" in human.stdout
    finally:
        assert stop(proc) == 0  # SIGTERM stops it cleanly
    after = scheduler_status(ws)
    assert after["schedulers"] == [] and not any(lease["alive"] for lease in after["leases"])


def test_a_second_scheduler_on_sqlite_waits_as_a_standby(tmp_path: Path) -> None:
    ws = scheduler_workspace(tmp_path / "ws", EVERY_SECOND.replace("{catchup}", "all"))
    a, b = Scheduler(ws, lease_s=30), Scheduler(ws, lease_s=30)
    a.step()
    b.step()
    assert a.leases.since and not b.leases.since  # one writer
    a.close()  # gives the lease back
    b._next_beat = 0
    b.step()
    assert b.leases.since
    b.close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('p = st.Pipeline("p", [work], triggers=["dataset:x"])', "is not a trigger"),
        (
            'p = st.Pipeline("p", [work], triggers=[st.on_dataset("x"), st.on_dataset("x")])',
            "twice",
        ),
        ('p = st.Pipeline("p", [work], schedule="61 * * * *")', "invalid cron"),
    ],
)
def test_bad_schedules_and_triggers_stop_the_scheduler_with_a_hint(
    tmp_path: Path, body: str, words: str
) -> None:
    ws = scheduler_workspace(
        tmp_path / "ws", "@st.step\ndef work():\n    return 1\n\n\n" + body + "\n"
    )
    with pytest.raises(ConfigError) as err:
        Scheduler(ws)
    assert words in err.value.message and err.value.hint
    with pytest.raises(ConfigError, match="no pipeline named 'nope'"):
        Scheduler(ws, pipelines=["nope"])


def test_trigger_constructors_refuse_bad_input() -> None:
    with pytest.raises(ConfigError, match="unknown alert state"):
        st.on_alert("r", state="firing")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown pipeline state"):
        st.on_pipeline("p", state="done")  # type: ignore[arg-type]
    with pytest.raises(st.StrataError, match="invalid queue name"):
        st.on_queue("no spaces allowed")
    with pytest.raises(ConfigError, match="non-empty"):
        st.on_dataset("")
    assert (
        st.on_files("s3://bucket/in/", "*.parquet").key
        == "files:s3://bucket/in/:pattern=*.parquet:recursive=False"
    )
    assert st.on_dataset("tx", id="tx-trigger").key == "tx-trigger"
