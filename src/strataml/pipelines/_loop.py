"""The closed loop's canary analysis: a durable state machine advanced by idempotent steps.

:func:`start_canary` sends a share of a deployment's traffic to a new version (one
transaction: the traffic, the loop's row, the event; a canary already live for the
deployment is superseded in the same transaction, so the analysis restarts).
:func:`advance` makes at most one step of one loop, whatever process calls it and
however often: it does nothing until a round of checks is due, then checks, then
extends the watch, waits for approval, promotes, rolls back or ends the bake. Every
step that changes traffic or aliases commits them with the loop's new state and its
events, so the catalog always holds the champion alone or the champion plus the
canary at its declared weight — a process killed mid-step changed nothing — and a
restarted scheduler resumes the watch where the row says it stands.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from strataml.errors import ConfigError, NotFound
from strataml.pipelines._canary import Canary, failed_rounds
from strataml.pipelines._loop_store import (
    ACTIVE,
    LoopRun,
    active_loop,
    commit,
    event,
    get_loop,
    insert,
    list_loops,
    new_id,
)
from strataml.pipelines._observe import observe, round_of
from strataml.pipelines._triggers import LOOP_ALERT_PREFIX
from strataml.spine import Workspace, current_actor, failpoint, utcnow

PREVIOUS = "previous"
#: the metric of a deployment's loop alert (``loop:DEPLOYMENT``): it fires when a loop
#: rolls back (value 1) and resolves when a later loop promotes (value 0)
LOOP_ALERT_METRIC = "loop_rollback"


def _later(t: dt.datetime, s: float) -> dt.datetime:
    return t + dt.timedelta(seconds=s)


def _champion_version(ws: Workspace, model: str, deployment: str, t: Any) -> tuple[int, str]:
    """The champion's version and reference under ``deployment``'s traffic ``t`` (None: none set)."""
    from strataml.models import resolve_version

    ref = t.champion if t is not None else "champion"
    try:
        return resolve_version(ws, model, ref), ref
    except NotFound as exc:
        raise ConfigError(
            f"deployment {deployment!r} has no champion to compare a canary with: {exc.message}",
            hint=f"make a version champion first: 'strata models alias {model} champion VERSION'",
        ) from None


def start_canary(
    ws: Workspace,
    model: str,
    version: int,
    canary: Canary | None = None,
    *,
    deployment: str | None = None,
    pipeline_run: str | None = None,
    trigger: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> LoopRun:
    """Deploy ``model`` v``version`` as the canary of ``deployment`` (default: the model's
    name) at ``canary.weight`` and start watching it; a live canary of the deployment is
    superseded (its analysis ends, the new one starts from nothing)."""
    from strataml.models import resolve_version
    from strataml.serving import get_traffic, write_traffic

    spec = canary or Canary()
    dep = deployment or model
    version = resolve_version(ws, model, int(version))
    current = get_traffic(ws.catalog, dep)
    champion, _ = _champion_version(ws, model, dep, current)
    shared = sum(v.weight for v in current.ab) if current is not None else 0.0
    if shared + spec.weight > 1.0 + 1e-9:
        raise ConfigError(
            f"deployment {dep!r} gives {shared:g} of its traffic to A/B variants: a canary at {spec.weight:g} does not fit",
            hint="lower the canary's weight or end the A/B split first",
        )
    if champion == version:
        raise ConfigError(
            f"model {model} v{version} is already the champion of deployment {dep!r}",
            hint="train a challenger first",
        )
    now = now or utcnow()
    run = LoopRun(
        id=new_id(),
        model=model,
        deployment=dep,
        state="canary",
        champion_version=champion,
        canary_version=version,
        canary=spec,
        rounds=[],
        decision=None,
        pipeline_run=pipeline_run,
        trigger=trigger,
        generation=1,
        started_at=now,
        watch_until=_later(now, spec.watch_s),
        watch_limit=_later(now, spec.max_watch_s),
        next_check_at=_later(now, spec.interval_s),
        approval_until=None,
        approved_by=None,
        bake_until=None,
        created_at=now,
        updated_at=now,
        ended_at=None,
    )
    with ws.catalog.write() as conn:
        old = active_loop(conn, dep)
        if old is not None:
            _end_for(conn, old, run)
        insert(conn, run)
        write_traffic(
            conn,
            dep,
            {"canary": {"ref": f"v{version}", "weight": spec.weight}},
            reason=f"canary of {model} v{version} at {spec.weight:g} (loop {run.id})",
        )
        event(
            conn,
            run,
            "canary.started",
            {
                "weight": spec.weight,
                "watch": spec.watch,
                "rules": spec.to_dict(),
                "superseded": old.id if old is not None else None,
                "trigger": trigger,
            },
        )
        failpoint("loop.canary.start")
    return run


def _end_for(conn: sa.Connection, old: LoopRun, new: LoopRun) -> None:
    """End the deployment's live loop in favour of ``new`` (inside its transaction)."""
    from strataml.pipelines._loop_store import write

    if (
        old.state == "baking"
    ):  # the bake was good so far: it ends promoted, and the new canary is judged against it
        write(
            conn,
            old,
            {
                "state": "promoted",
                "decision": {**(old.decision or {}), "bake": "ended early by a new canary"},
            },
        )
        event(
            conn,
            old,
            "bake.finished",
            {"reason": f"a new canary (v{new.canary_version}) started", "by": new.id},
        )
        return
    decision = {
        "outcome": "superseded",
        "reasons": [f"a newer challenger (v{new.canary_version}) arrived mid-canary"],
        "by": new.id,
    }
    write(conn, old, {"state": "superseded", "decision": decision})
    event(conn, old, "canary.superseded", {"reasons": decision["reasons"], "by": new.id})


def advance(ws: Workspace, loop_id: str, *, now: dt.datetime | None = None) -> LoopRun:
    """Make the loop's next step if one is due (idempotent: a step another process made
    first is not made again); the loop as it then stands."""
    for _ in range(5):
        run = get_loop(ws, loop_id)
        if not run.active:
            return run
        t = now or utcnow()
        done = _step(ws, run, t)
        if done is not None:
            return done
    return get_loop(ws, loop_id)


def advance_loops(ws: Workspace, *, now: dt.datetime | None = None) -> list[LoopRun]:
    """Advance every live loop once (what each scheduler tick, or ``strata pipelines
    advance``, does); the loops as they then stand."""
    t = now or utcnow()
    return [advance(ws, r.id, now=now) if _due(r, t) else r for r in list_loops(ws, active=True, limit=1000)]


def _due(run: LoopRun, now: dt.datetime) -> bool:
    """Whether :func:`_step` may do something for ``run`` at ``now`` (else it returns the
    run as it is): a round of checks is due, or an approval or the bake decides."""
    if now >= run.next_check_at:
        return True
    if run.state == "approval":
        return bool(run.approved_by) or now >= (run.approval_until or now)
    return run.state == "baking" and now >= (run.bake_until or now)


def _step(ws: Workspace, run: LoopRun, now: dt.datetime) -> LoopRun | None:
    """One step of ``run`` (None when another process moved it first: read it again)."""
    if run.state == "canary":
        return _watch(ws, run, now)
    if run.state == "approval":
        if run.approved_by:
            return _promote(ws, run, now, [f"approved by {run.approved_by}"])
        if now >= (run.approval_until or now):
            return _rollback(
                ws,
                run,
                now,
                [
                    f"no approval before {run.approval_until.isoformat() if run.approval_until else now}"
                ],
                "approval_timeout",
            )
        return _guard(ws, run, now)
    if run.state == "baking":
        if now >= (run.bake_until or now):

            def finished(conn: sa.Connection, fresh: LoopRun) -> None:
                event(
                    conn,
                    fresh,
                    "bake.finished",
                    {"reason": "bake period over", "previous": run.champion_version},
                )

            return commit(ws, run, {"state": "promoted"}, finished)
        return _guard(ws, run, now, baking=True)
    return run


def _watch(ws: Workspace, run: LoopRun, now: dt.datetime) -> LoopRun | None:
    spec = run.canary
    if now < run.next_check_at:
        return run
    rnd, rounds, failing = _round(ws, run, now, since=run.started_at)
    if failing is not None:
        return _rollback(ws, run, now, failing, "checks_failed", rounds)
    if now < run.watch_until:
        return _checked(ws, run, now, rounds, rnd)
    promote = rnd["promote_if"]
    fails = [x["reason"] for x in promote if x["outcome"] == "fail"]
    unsure = [x["reason"] for x in promote if x["outcome"] == "inconclusive"]
    if fails:
        return _rollback(ws, run, now, fails, "checks_failed", rounds)
    if unsure:
        until = _later(now, spec.interval_s)
        if until > run.watch_limit:
            return _rollback(
                ws,
                run,
                now,
                [
                    f"still inconclusive at the watch limit ({spec.max_watch or '3 x watch'})",
                    *unsure,
                ],
                "inconclusive",
                rounds,
            )

        def extended(conn: sa.Connection, fresh: LoopRun) -> None:
            event(
                conn,
                fresh,
                "canary.extended",
                {"until": until.isoformat(), "reasons": unsure, "figures": rnd["figures"]},
            )

        return commit(
            ws, run, {"rounds": rounds, "watch_until": until, "next_check_at": until}, extended
        )
    passed = [x["reason"] for x in promote]
    if spec.approval and not run.approved_by:
        until = _later(now, spec.approval_timeout_s)

        def asked(conn: sa.Connection, fresh: LoopRun) -> None:
            event(
                conn,
                fresh,
                "approval.requested",
                {
                    "until": until.isoformat(),
                    "reasons": passed,
                    "figures": rnd["figures"],
                    "command": f"strata models approve {run.model}@{run.canary_version}",
                },
            )

        return commit(
            ws,
            run,
            {
                "state": "approval",
                "rounds": rounds,
                "approval_until": until,
                "next_check_at": _later(now, spec.interval_s),
            },
            asked,
        )
    return _promote(ws, run, now, passed, rounds)


def _checked(
    ws: Workspace, run: LoopRun, now: dt.datetime, rounds: list[dict[str, Any]], rnd: dict[str, Any]
) -> LoopRun | None:
    def checked(conn: sa.Connection, fresh: LoopRun) -> None:
        event(
            conn,
            fresh,
            "bake.checked" if run.state == "baking" else "canary.checked",
            {
                "round": len(rounds),
                "figures": rnd["figures"],
                "outcomes": {
                    x["check"]: x["outcome"] for x in (*rnd["promote_if"], *rnd["rollback_if"])
                },
            },
        )

    return commit(
        ws, run, {"rounds": rounds, "next_check_at": _later(now, run.canary.interval_s)}, checked
    )


def _guard(
    ws: Workspace, run: LoopRun, now: dt.datetime, *, baking: bool = False
) -> LoopRun | None:
    """While waiting (for approval, or through the bake), the rollback_if rules keep watching."""
    if now < run.next_check_at or not run.canary.rollback_if:
        return run
    promoted_at = (run.bake_until or now) - dt.timedelta(seconds=run.canary.bake_s)
    rnd, rounds, failing = _round(
        ws, run, now, since=promoted_at if baking else run.started_at, rollback_only=True, thresholds_only=baking
    )
    if failing is not None:
        return _rollback(ws, run, now, failing, "checks_failed", rounds)
    return _checked(ws, run, now, rounds, rnd)


def _round(
    ws: Workspace, run: LoopRun, now: dt.datetime, *, since: dt.datetime, rollback_only: bool = False,
    thresholds_only: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str] | None]:
    """One round of the canary's checks on the traffic since ``since``: the round, the
    rounds with it, and why to roll back now (None: the failure limit is not reached).
    ``rollback_only``: the rollback_if checks alone (waiting for approval, baking);
    ``thresholds_only``: against their thresholds, not the champion (baking)."""
    spec = run.canary
    obs = observe(
        ws,
        model=run.model,
        deployment=run.deployment,
        champion=run.champion_version,
        canary_version=run.canary_version,
        since=since,
        canary=spec,
        only_thresholds=thresholds_only,
    )
    rnd = round_of(obs, spec, now, rollback_only=rollback_only)
    rounds = [*run.rounds, rnd]
    reached, failed, counted = failed_rounds(rounds, spec.failure_limit)
    if not reached:
        return rnd, rounds, None
    return rnd, rounds, [
        f"rollback_if failed in {failed} of the last {counted} rounds ({spec.failure_limit})",
        *(x["reason"] for x in rnd["rollback_if"] if x["outcome"] == "fail"),
    ]


def _promote(
    ws: Workspace,
    run: LoopRun,
    now: dt.datetime,
    reasons: list[str],
    rounds: list[dict[str, Any]] | None = None,
) -> LoopRun | None:
    from strataml.models import CHAMPION, move_alias, resolve_version
    from strataml.monitoring import set_alert
    from strataml.serving import write_traffic

    spec = run.canary
    bake_s = spec.bake_s
    figures = (rounds or run.rounds or [{}])[-1].get("figures")
    decision = {
        "outcome": "promoted",
        "reasons": reasons,
        "figures": figures,
        "at": now.isoformat(),
    }
    previous = resolve_version(ws, run.model, CHAMPION)
    changes: dict[str, Any] = {
        "state": "baking" if bake_s > 0 else "promoted",
        "decision": decision,
        "champion_version": previous,
        "bake_until": _later(now, bake_s) if bake_s > 0 else None,
        "next_check_at": _later(now, spec.interval_s),
    }
    if rounds is not None:
        changes["rounds"] = rounds

    def promote(conn: sa.Connection, fresh: LoopRun) -> None:
        why = f"promoted by the canary analysis of loop {run.id}"
        move_alias(conn, run.model, CHAMPION, run.canary_version, reason=why)
        move_alias(
            conn,
            run.model,
            PREVIOUS,
            previous,
            reason=f"champion before loop {run.id}, kept for the bake period",
        )
        write_traffic(conn, run.deployment, {"canary": None, "champion": CHAMPION}, reason=why)
        set_alert(  # a rollback's alert ends with the deployment's next promotion
            conn,
            f"{LOOP_ALERT_PREFIX}{run.deployment}",
            run.model,
            False,
            metric=LOOP_ALERT_METRIC,
            value=0.0,
            threshold=1.0,
            message=f"{run.model} v{run.canary_version} promoted by loop {run.id}",
            details={"loop": run.id},
        )
        event(
            conn,
            fresh,
            "promoted",
            {
                "reasons": reasons,
                "figures": figures,
                "previous": previous,
                "bake_until": changes["bake_until"].isoformat() if changes["bake_until"] else None,
            },
        )

    return commit(ws, run, changes, promote, point="loop.promote")


def _rollback(
    ws: Workspace,
    run: LoopRun,
    now: dt.datetime,
    reasons: list[str],
    why: str,
    rounds: list[dict[str, Any]] | None = None,
) -> LoopRun | None:
    from strataml.models import CHAMPION, move_alias
    from strataml.monitoring import set_alert
    from strataml.serving import write_traffic

    figures = (rounds or run.rounds or [{}])[-1].get("figures")
    decision = {
        "outcome": "rolled_back",
        "why": why,
        "reasons": reasons,
        "figures": figures,
        "at": now.isoformat(),
    }
    changes: dict[str, Any] = {"state": "rolled_back", "decision": decision}
    if rounds is not None:
        changes["rounds"] = rounds
    was_baking = run.state == "baking"

    def rollback(conn: sa.Connection, fresh: LoopRun) -> None:
        if (
            was_baking and run.champion_version is not None
        ):  # promoted already: the champion pointer moves back
            move_alias(
                conn,
                run.model,
                CHAMPION,
                run.champion_version,
                action="rollback",
                reason=f"rolled back during the bake of loop {run.id}: {'; '.join(reasons)[:400]}",
            )
        else:
            write_traffic(
                conn,
                run.deployment,
                {"canary": None},
                reason=f"canary of loop {run.id} rolled back",
            )
        event(
            conn,
            fresh,
            "rolled_back",
            {"why": why, "reasons": reasons, "figures": figures, "after_promotion": was_baking},
        )
        set_alert(
            conn,
            f"{LOOP_ALERT_PREFIX}{run.deployment}",
            run.model,
            True,
            metric=LOOP_ALERT_METRIC,
            value=1.0,
            threshold=1.0,
            message=f"{run.model} v{run.canary_version} rolled back ({why}): {'; '.join(reasons)[:500]}",
            details={"loop": run.id, "why": why},
        )

    return commit(ws, run, changes, rollback, point="loop.rollback")


def approve(
    ws: Workspace, ref: str, *, actor: str | None = None, now: dt.datetime | None = None
) -> LoopRun:
    """Approve the promotion of ``NAME@V`` (its canary under analysis): promoted at once
    when its checks have passed, else as soon as they do."""
    name, _, v = ref.partition("@")
    if not v or not v.lstrip("v").isdigit():
        raise ConfigError(
            f"approve {ref!r}: name the version", hint="write NAME@VERSION, e.g. fraud@3"
        )
    version = int(v.lstrip("v"))
    who = actor or current_actor()
    for _ in range(5):
        live = [
            r
            for r in list_loops(ws, model=name, active=True)
            if r.canary_version == version and r.state in ("canary", "approval")
        ]
        if not live:
            raise NotFound(
                f"no canary of {name} v{version} is waiting for approval",
                hint="'strata pipelines loops' shows the loops and their states",
            )
        run = live[0]

        def approved(conn: sa.Connection, fresh: LoopRun) -> None:
            event(conn, fresh, "approved", {"by": who}, actor=who)

        done = commit(ws, run, {"approved_by": who}, approved)
        if done is not None:
            return advance(ws, done.id, now=now) if done.state == "approval" else done
    return get_loop(ws, live[0].id)


def abort(
    ws: Workspace, loop_id: str, *, reason: str = "aborted by hand", now: dt.datetime | None = None
) -> LoopRun:
    """Roll a live loop back now (its canary removed, or, during the bake, the previous champion restored)."""
    for _ in range(5):
        run = get_loop(ws, loop_id)
        if run.state not in ACTIVE:
            return run
        done = _rollback(ws, run, now or utcnow(), [reason], "aborted")
        if done is not None:
            return done
    return get_loop(ws, loop_id)
