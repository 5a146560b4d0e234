"""The scheduler: runs the schedules and triggers of a workspace's pipelines until stopped.

Each pass, for every schedule or trigger it holds the lease of (see :mod:`._leases`):

1. **claimed**: the ticks due (or events seen) are written as tick rows, each with a run
   key derived from the schedule or trigger and the tick time or event (:mod:`._ticks`),
   under a unique constraint; ticks already recorded are not recorded again;
2. **run created**: ``create_run(..., run_key=...)``, which finds the run when it exists;
3. **run started**: the run is handed to an executor thread (``execute_run``);
4. **cursor committed**: the schedule's or trigger's cursor moves past what was recorded,
   and only then are queue messages acknowledged.

A scheduler killed between any two steps leaves rows that the next holder of the lease
finishes: a claimed tick gets its run, a created run is started, a run whose executor
died is executed again from its last completed step, and a tick seen again finds its row.
So every tick starts exactly one run. ``SIGTERM`` (or :meth:`Scheduler.stop`) stops
claiming, waits up to ``drain_s`` for runs in progress, and gives the leases back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from strataml.errors import ConcurrencyError, ConfigError, StrataError
from strataml.pipelines import _ticks as ticks
from strataml.pipelines._leases import LeaseLost, Leases, new_holder
from strataml.pipelines._schedule import Schedule
from strataml.pipelines._triggers import Batch, Fire, Trigger, open_source
from strataml.spine import Workspace, append_event, failpoint, utcnow

log = logging.getLogger("strataml.scheduler")


@dataclass
class Source:
    """One schedule or trigger of one pipeline, as the scheduler runs it."""

    id: str
    pipeline: str
    schedule: Schedule | None = None
    trigger: Trigger | None = None
    poller: Any = None

    def describe(self) -> str:
        """A short human description."""
        return (
            self.schedule.describe()
            if self.schedule is not None
            else self.trigger.describe()
            if self.trigger
            else ""
        )


def declared_sources(ws: Workspace, pipelines: list[str] | None = None) -> list[Source]:
    """The schedules and triggers declared on the workspace's pipelines."""
    declared = {p.name: p for p in ws.definitions.all("pipeline")}
    for name in pipelines or []:
        if name not in declared:
            raise ConfigError(
                f"no pipeline named {name!r} is declared",
                hint=f"declared: {', '.join(sorted(declared)) or 'none'}",
            )
    out: list[Source] = []
    for name in sorted(pipelines or declared):
        obj = declared[name]
        schedule = getattr(obj, "schedule", None)
        if schedule is not None:
            out.append(Source(f"{name}:schedule", name, schedule=Schedule.parse(schedule)))
        seen: set[str] = set()
        for trigger in getattr(obj, "triggers", None) or ():
            if not isinstance(trigger, Trigger):
                raise ConfigError(
                    f"pipeline {name!r}: {trigger!r} is not a trigger",
                    hint="use st.on_dataset, st.on_files, st.on_alert, st.on_queue or st.on_pipeline",
                )
            if trigger.key in seen:
                raise ConfigError(
                    f"pipeline {name!r} declares the trigger {trigger.key!r} twice",
                    hint="give one an id=",
                )
            seen.add(trigger.key)
            out.append(Source(f"{name}:trigger:{trigger.key}", name, trigger=trigger))
    return out


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def interrupted(ws: Workspace, run: Any) -> bool:
    """Whether a failed run failed because the process executing it died (not on its own)."""
    from strataml.spine import list_events

    for e in reversed(
        list_events(ws.catalog, kind="pipeline.run.failed", subject=run.pipeline, limit=200)
    ):
        if e.payload.get("run_id") == run.id:
            return bool(e.payload.get("reason") == "owner_died")
    return False


class Scheduler:
    """Runs schedules and triggers until stopped (see the module docstring).

    ``pipelines`` limits it to some pipelines; ``poll_s`` is how often triggers are polled;
    ``lease_s`` how long a lease outlives the last heartbeat; ``max_runs`` how many runs
    execute at once in this process; ``engine`` the engine runs execute on.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        pipelines: list[str] | None = None,
        poll_s: float = 1.0,
        lease_s: float = 30.0,
        max_runs: int = 4,
        engine: str = "local",
        drain_s: float = 30.0,
    ) -> None:
        if poll_s <= 0 or lease_s <= 0 or max_runs < 1:
            raise ConfigError(
                "poll_s and lease_s must be positive and max_runs at least 1",
                hint="e.g. --poll 1 --lease 30 --max-runs 4",
            )
        self.ws = workspace
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.engine = engine
        self.drain_s = drain_s
        self.holder = new_holder()
        self.sources = declared_sources(workspace, pipelines)
        self.leases = Leases(workspace.catalog, self.holder, lease_s)
        self.loop = asyncio.new_event_loop()
        for s in self.sources:
            if s.trigger is not None:
                s.poller = open_source(workspace, s.trigger, self.loop, lease_s)
        self.max_runs = max_runs
        self.inflight: dict[int, threading.Thread] = {}
        self.inflight_sources: dict[int, str] = {}
        self.checked: dict[int, float] = {}
        self.stopping = threading.Event()
        self.launched = 0
        self._next_beat = 0.0
        self._errors: dict[str, float] = {}

    # --- the loop ---------------------------------------------------------------------

    def run(self, *, duration_s: float | None = None) -> int:
        """Schedule until :meth:`stop` (or ``duration_s``); the runs it launched."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        beats = threading.Thread(
            target=self._heartbeat, name="strata-scheduler-heartbeat", daemon=True
        )
        beats.start()
        try:
            while not self.stopping.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    self.step()
                except StrataError as exc:  # the catalog unreachable, for one: try again
                    log.warning("scheduler pass failed: %s", exc.message)
                self.stopping.wait(self._sleep())
        finally:
            self.close()
        return self.launched

    def _heartbeat(self) -> None:
        # leases are renewed on their own clock, so a long pass cannot let them lapse
        while not self.stopping.wait(self.lease_s / 3):
            try:
                self.leases.renew()
            except StrataError as exc:
                log.warning("scheduler heartbeat failed: %s", exc.message)

    def stop(self) -> None:
        """Stop after the current pass (safe from a signal handler or another thread)."""
        self.stopping.set()

    def step(self) -> None:
        """One pass: heartbeat, finish what earlier holders left, poll what is due."""
        self._reap()
        if time.monotonic() >= self._next_beat:
            busy = set(self.inflight_sources.values())
            self.leases.beat([s.id for s in self.sources], busy)
            self._next_beat = time.monotonic() + self.lease_s / 3
        held = dict(self.leases.since)
        mine = [s for s in self.sources if s.id in held]
        try:
            self._resume([s.id for s in mine])
        except LeaseLost as lost:
            log.info("lost the lease of %s", lost)
        now = utcnow()
        for s in mine:
            if self.stopping.is_set():
                break
            try:
                self._poll(s, now, held[s.id])
            except LeaseLost:
                log.info("lost the lease of %s", s.id)
            except StrataError as exc:
                self._warn(s.id, exc.message)
            except OSError as exc:  # a landing folder or a queue unreachable
                self._warn(s.id, f"{type(exc).__name__}: {exc}")
        self._advance_loops()

    def _advance_loops(self) -> None:
        """Advance the closed loop's live canary analyses (each step is idempotent and
        guarded, so any number of schedulers may do it; one that was killed left none half-made)."""
        if self.stopping.is_set():
            return
        from strataml.pipelines._loop import advance_loops

        try:
            advance_loops(self.ws)
        except StrataError as exc:
            self._warn("loops", exc.message)

    def _warn(self, source: str, message: str) -> None:
        last = self._errors.get(source, 0.0)
        if time.monotonic() - last > 60:
            log.warning("%s: %s", source, message)
            self._errors[source] = time.monotonic()

    def _sleep(self) -> float:
        wait = self.poll_s
        now = utcnow()
        for s in self.sources:
            if s.schedule is not None and s.id in self.leases.since:
                nxt = s.schedule.next_after(now)
                wait = min(wait, max((nxt - now).total_seconds(), 0.0) + 0.001)
        return max(wait, 0.001)

    # --- polling ----------------------------------------------------------------------

    def _poll(self, s: Source, now: dt.datetime, since: dt.datetime) -> None:
        cursor = ticks.get_cursor(self.ws.catalog, s.id)
        skipped: dict[str, Any] | None = None
        if s.schedule is not None:
            # ticks are recorded before the cursor moves: the last one recorded counts too
            last = ticks.last_due(self.ws.catalog, s.id)
            start = (
                max(t for t in (_parse_iso(cursor) if cursor else None, last) if t is not None)
                if cursor or last
                else since
            )
            plan = s.schedule.plan(start, since, now)
            fires = [
                Fire(
                    _iso(t),
                    t,
                    {"kind": "schedule", "schedule": s.schedule.describe(), "tick": t.isoformat()},
                    dict(s.schedule.params),
                )
                for t in plan.run
            ]
            if plan.skipped_from is not None and plan.skipped_until is not None:
                skipped = {
                    "after": plan.skipped_from.isoformat(),
                    "until": plan.skipped_until.isoformat(),
                    "policy": s.schedule.catchup,
                }
            batch = Batch(fires, _iso(plan.cursor))
        else:
            batch = s.poller.poll(cursor, now)
        baseline = bool(batch.note.get("baseline"))
        new: list[ticks.Tick] = []
        if batch.fires:
            with self.ws.catalog.write() as conn:
                self.leases.check(conn, s.id)
                new = ticks.claim(
                    conn,
                    s.id,
                    s.pipeline,
                    batch.fires,
                    self.holder,
                    state="skipped" if baseline else "claimed",
                )
            if new and not baseline:
                failpoint("scheduler.claimed")
            if s.trigger is not None and s.trigger.kind == "queue" and len(new) < len(batch.fires):
                log.info(
                    "%s: %d message(s) redelivered, their ticks already recorded",
                    s.id,
                    len(batch.fires) - len(new),
                )
        for tick in new if not baseline else []:
            self._launch(tick)
        if batch.cursor is not None and (batch.cursor != cursor or skipped):
            with self.ws.catalog.write() as conn:
                self.leases.check(conn, s.id)
                ticks.set_cursor(conn, s.id, batch.cursor)
                if skipped:
                    append_event(
                        conn, "scheduler.ticks_skipped", s.pipeline, {"source": s.id, **skipped}
                    )
            if new:
                failpoint("scheduler.cursor_committed")
        if batch.after_commit is not None:
            batch.after_commit()

    # --- launching --------------------------------------------------------------------

    def _launch(self, tick: ticks.Tick) -> None:
        """Take one pending tick as far as it can go now: create its run, start it."""
        from strataml.pipelines import create_run

        run_id = tick.run_id
        if tick.state == "claimed":
            trigger = tick.trigger | {
                "source": tick.source,
                "tick": tick.tick_key,
                "due_at": tick.due_at.isoformat(),
            }
            try:
                run_id, _ = create_run(
                    self.ws,
                    tick.pipeline,
                    params=tick.params or None,
                    run_key=tick.run_key,
                    trigger=trigger,
                )
            except (
                StrataError
            ) as exc:  # the pipeline or its parameters are wrong: this tick cannot run
                ticks.set_state(self.ws.catalog, tick.id, "failed", error=exc.message)
                log.error("%s tick %s: %s", tick.source, tick.tick_key, exc.message)
                return
            ticks.set_state(self.ws.catalog, tick.id, "created", run_id=run_id)
            failpoint("scheduler.run_created")
        if run_id is None or len(self.inflight) >= self.max_runs or self.stopping.is_set():
            return  # started later, when a slot frees
        if tick.state != "started":
            with self.ws.catalog.write() as conn:
                self.leases.check(conn, tick.source)
                ticks.set_state(
                    self.ws.catalog,
                    tick.id,
                    "started",
                    run_id=run_id,
                    executor=self.holder,
                    conn=conn,
                )
            failpoint("scheduler.run_started")
        self._start(tick, run_id)
        self.launched += 1

    def _start(self, tick: ticks.Tick, run_id: str) -> None:
        # a daemon thread: a scheduler that stops leaves a run it could not drain to the next
        # holder, which finds its executor gone and executes it again
        thread = threading.Thread(
            target=self._execute,
            args=(tick.id, run_id),
            name=f"strata-run-{run_id[:8]}",
            daemon=True,
        )
        self.inflight[tick.id] = thread
        self.inflight_sources[tick.id] = tick.source
        thread.start()

    def _execute(self, tick_id: int, run_id: str) -> None:
        from strataml.pipelines import execute_run, get_run

        try:
            execute_run(self.ws, run_id, engine=self.engine)
        except ConcurrencyError:
            pass  # another process executes it; the tick follows the run later
        except Exception as exc:
            message = (
                exc.message if isinstance(exc, StrataError) else f"{type(exc).__name__}: {exc}"
            )
            log.error("run %s: %s", run_id, message)
        try:
            run = get_run(self.ws, run_id)
            if run.finished and not (run.state == "failed" and interrupted(self.ws, run)):
                ticks.set_state(self.ws.catalog, tick_id, run.state, error=run.error)
        except StrataError as exc:
            log.error("run %s: %s", run_id, exc.message)

    def _reap(self) -> None:
        for tick_id, thread in list(self.inflight.items()):
            if not thread.is_alive():
                del self.inflight[tick_id]
                del self.inflight_sources[tick_id]

    def _resume(self, sources: list[str]) -> None:
        """Finish ticks left pending (by a killed scheduler, or waiting for a free slot)."""
        from strataml.pipelines import get_run

        alive: set[str] | None = None
        for tick in ticks.pending(self.ws.catalog, sources):
            if tick.id in self.inflight or self.stopping.is_set():
                continue
            if tick.state != "started":
                self._launch(tick)
                continue
            if time.monotonic() - self.checked.get(tick.id, -1e9) < self.lease_s / 3:
                continue
            self.checked[tick.id] = time.monotonic()
            assert tick.run_id is not None
            run = get_run(self.ws, tick.run_id)
            if run.finished and not (run.state == "failed" and interrupted(self.ws, run)):
                ticks.set_state(self.ws.catalog, tick.id, run.state, error=run.error)
                continue
            if alive is None:
                alive = self.leases.alive()
            if tick.claimed_by != self.holder and tick.claimed_by in alive:
                continue  # the scheduler that started it is alive and executes it
            if len(self.inflight) >= self.max_runs:
                continue
            # queued, running on a dead process, or interrupted: execute it (again)
            with self.ws.catalog.write() as conn:
                self.leases.check(conn, tick.source)
                if not ticks.take(conn, tick, self.holder):
                    continue
            self._start(tick, tick.run_id)

    # --- shutting down -----------------------------------------------------------------

    def close(self) -> None:
        """Wait up to ``drain_s`` for runs in progress, give the leases back, close sources."""
        self.stopping.set()
        deadline = time.monotonic() + self.drain_s
        for thread in list(self.inflight.values()):
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._reap()
        try:
            if not self.inflight:
                self.leases.release()
        except StrataError as exc:
            log.warning("could not release the scheduler's leases: %s", exc.message)
        for s in self.sources:
            if s.poller is not None and hasattr(s.poller, "close"):
                s.poller.close()
        self.loop.close()


def run_scheduler(workspace: Workspace, *, duration_s: float | None = None, **options: Any) -> int:
    """Run a :class:`Scheduler` in this process until SIGTERM or Ctrl-C; the runs it launched."""
    scheduler = Scheduler(workspace, **options)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: scheduler.stop())
    try:
        return scheduler.run(duration_s=duration_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
