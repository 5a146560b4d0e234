"""The closed loop's canary analysis over real traffic through the gateway: promote,
roll back, inconclusive watches, approval, a newer challenger, the bake period."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import strataml as st
from strataml.models import get_model, train
from strataml.monitoring import list_alerts, set_alert
from strataml.pipelines import (
    Canary,
    Check,
    abort,
    advance,
    advance_loops,
    get_loop,
    list_loops,
    start_canary,
)
from strataml.serving import get_traffic
from strataml.spine import list_events

from .loop_setup import build_template, churn, copy_of, rows, serve


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("loop") / "tpl")


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Iterator[st.Workspace]:
    w = copy_of(template, tmp_path / "ws")
    yield w
    w.close()


QUICK = dict(watch="2s", interval="1s", bake="0s")


def at(run, seconds: float) -> dt.datetime:
    return run.started_at + dt.timedelta(seconds=seconds)


def loop_kinds(ws: st.Workspace, run_id: str) -> list[str]:
    return [e.kind for e in list_events(ws.catalog, subject=f"loop:{run_id}", limit=None)]


def test_a_healthy_canary_is_promoted_after_its_watch(ws: st.Workspace) -> None:
    spec = Canary(
        weight=0.5,
        promote_if=[
            Check("error_rate", min_requests=20),
            Check("latency_p99", margin=50.0, min_requests=20),
        ],
        rollback_if=[Check("error_rate", vs=None, max=0.05, min_requests=10)],
        watch="2s",
        interval="1s",
        bake="1h",
    )
    with ws.catalog.write() as conn:  # an earlier loop of the deployment rolled back
        set_alert(conn, "loop:churn", "churn", True, metric="loop_rollback", value=1.0, threshold=1.0, message="v9 rolled back")
    run = start_canary(ws, "churn", 2, spec)
    t = get_traffic(ws.catalog, "churn")
    assert (
        t is not None
        and t.champion == "champion"
        and t.canary is not None
        and (t.canary.ref, t.canary.weight) == ("v2", 0.5)
    )
    seen = serve(ws, rows(160, 1))
    assert set(seen) == {1, 2}  # both versions answered live traffic
    # nothing is due before the first interval: advancing is a no-op, however often
    assert advance(ws, run.id, now=at(run, 0.5)).generation == run.generation
    first = advance(ws, run.id, now=at(run, 1))
    assert first.state == "canary" and len(first.rounds) == 1
    assert (
        advance(ws, run.id, now=at(run, 1)).rounds == first.rounds
    )  # the same round is not made twice
    figures = first.rounds[0]["figures"]
    assert figures["champion"]["requests"] == seen[1] and figures["canary"]["requests"] == seen[2]
    assert {r["outcome"] for r in first.rounds[0]["promote_if"]} == {"pass"}
    done = advance(ws, run.id, now=at(run, 2))
    assert done.state == "baking" and done.decision and done.decision["outcome"] == "promoted"
    aliases = get_model(ws, "churn")["aliases"]
    assert aliases["champion"] == 2 and aliases["previous"] == 1
    (alert,) = [a for a in list_alerts(ws) if a.rule == "loop:churn"]
    assert alert.state == "ok" and alert.resolved_at is not None and "promoted" in alert.message  # the promotion ends it
    assert [e.payload["rule"] for e in list_events(ws.catalog, kind="alert.resolved")] == ["loop:churn"]
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is None
    assert serve(ws, rows(20, 2)) == {2: 20}
    # the bake ends on a later tick; the loop is then over
    assert advance(ws, run.id, now=at(run, 3)).state == "baking"
    over = advance(ws, run.id, now=at(run, 2 + 3601))
    assert over.state == "promoted" and not over.active and over.ended_at is not None
    assert loop_kinds(ws, run.id) == [
        "loop.canary.started",
        "loop.canary.checked",
        "loop.promoted",
        "loop.bake.checked",
        "loop.bake.finished",
    ]
    promoted = next(
        e for e in list_events(ws.catalog, subject=f"loop:{run.id}") if e.kind == "loop.promoted"
    )
    assert promoted.payload["reasons"] and promoted.payload["figures"]["canary"]["version"] == 2


def _tamper(ws: st.Workspace, version: int) -> None:
    sha = get_model(ws, "churn")["versions"][version - 1]["sha256"]
    path = Path(ws.artifacts.uri(sha))
    path.write_bytes(path.read_bytes() + b"tampered")


def test_a_failing_canary_is_rolled_back_and_alerts_while_users_get_the_champion(
    ws: st.Workspace,
) -> None:
    _tamper(
        ws, 2
    )  # the canary cannot be served: each of its requests fails, and the champion answers
    spec = Canary(
        weight=0.5,
        rollback_if=[Check("error_rate", vs=None, max=0.05, min_requests=10)],
        failure_limit="1 of 1",
        **QUICK,
    )
    run = start_canary(ws, "churn", 2, spec)
    assert serve(ws, rows(80, 3)) == {1: 80}
    out = advance(ws, run.id, now=at(run, 1))
    assert (
        out.state == "rolled_back"
        and out.decision is not None
        and out.decision["why"] == "checks_failed"
    )
    failed = out.rounds[-1]["rollback_if"][0]
    assert (
        failed["outcome"] == "fail"
        and failed["figures"]["canary_errors"] > 10
        and failed["figures"]["canary_rate"] == 1.0
    )
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is None
    assert get_model(ws, "churn")["aliases"]["champion"] == 1
    alerts = [
        e for e in list_events(ws.catalog, kind="alert.fired") if e.payload["rule"] == "loop:churn"
    ]
    assert len(alerts) == 1 and "v2 rolled back" in alerts[0].payload["message"]
    (listed,) = [a for a in list_alerts(ws, state="firing") if a.rule == "loop:churn"]  # listed like a rule's alert
    assert listed.subject == "churn" and listed.metric == "loop_rollback" and "v2 rolled back" in listed.message
    assert "loop.rolled_back" in loop_kinds(ws, run.id)


def test_too_little_traffic_extends_the_watch_and_never_promotes(ws: st.Workspace) -> None:
    spec = Canary(
        weight=0.1,
        watch="2s",
        interval="1s",
        max_watch="4s",
        bake="0s",
        promote_if=[Check("error_rate", min_requests=1000)],
        rollback_if=[],
    )
    run = start_canary(ws, "churn", 2, spec)
    serve(ws, rows(30, 4))
    r = advance(ws, run.id, now=at(run, 2))
    assert r.state == "canary" and r.watch_until == at(run, 3)
    assert r.rounds[-1]["promote_if"][0]["outcome"] == "inconclusive"
    r = advance(ws, run.id, now=at(run, 3))
    assert r.state == "canary" and r.watch_until == at(run, 4)
    r = advance(ws, run.id, now=at(run, 4))
    assert (
        r.state == "rolled_back" and r.decision is not None and r.decision["why"] == "inconclusive"
    )
    assert get_model(ws, "churn")["aliases"]["champion"] == 1
    assert loop_kinds(ws, run.id).count("loop.canary.extended") == 2


def test_approval_by_the_cli_promotes_and_a_missed_approval_rolls_back(
    ws: st.Workspace, cli_env: dict[str, str], python: str
) -> None:
    spec = Canary(
        weight=0.5,
        promote_if=[Check("error_rate", min_requests=10)],
        rollback_if=[],
        approval=True,
        approval_timeout="1h",
        **QUICK,
    )
    run = start_canary(ws, "churn", 2, spec)
    serve(ws, rows(60, 5))
    waiting = advance(ws, run.id, now=at(run, 2))
    assert waiting.state == "approval" and waiting.approval_until == at(run, 2 + 3600)
    assert advance(ws, run.id, now=at(run, 100)).state == "approval"
    asked = next(
        e
        for e in list_events(ws.catalog, subject=f"loop:{run.id}")
        if e.kind == "loop.approval.requested"
    )
    assert asked.payload["command"] == "strata models approve churn@2"
    out = subprocess.run(
        [python, "-m", "strataml", "models", "approve", "churn@2", "--json", "-w", str(ws.root)],
        env={**cli_env, "STRATA_ACTOR": "alice"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    run = get_loop(ws, run.id)
    assert run.state == "promoted" and run.approved_by == "alice"
    assert get_model(ws, "churn")["aliases"]["champion"] == 2
    # nothing waits for approval any more: the CLI says so
    again = subprocess.run(
        [python, "-m", "strataml", "models", "approve", "churn@2", "-w", str(ws.root)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode != 0 and "no canary of churn v2" in again.stderr
    # a second canary whose approval never comes is rolled back when the timeout passes
    ws.definitions.add(churn(40))
    v3 = train(ws, "churn", promote=False).version
    assert v3 == 3
    second = start_canary(ws, "churn", 3, spec)
    serve(ws, rows(60, 6))
    assert advance(ws, second.id, now=at(second, 2)).state == "approval"
    timed_out = advance(ws, second.id, now=at(second, 2 + 3601))
    assert (
        timed_out.state == "rolled_back"
        and timed_out.decision is not None
        and timed_out.decision["why"] == "approval_timeout"
    )
    assert get_model(ws, "churn")["aliases"]["champion"] == 2


def test_a_new_challenger_mid_canary_restarts_the_analysis(ws: st.Workspace) -> None:
    spec = Canary(
        weight=0.3, promote_if=[Check("error_rate", min_requests=10)], rollback_if=[], **QUICK
    )
    first = start_canary(ws, "churn", 2, spec)
    serve(ws, rows(40, 7))
    assert len(advance(ws, first.id, now=at(first, 1)).rounds) == 1
    ws.definitions.add(churn(40))
    assert train(ws, "churn", promote=False).version == 3
    second = start_canary(ws, "churn", 3, spec)
    old = get_loop(ws, first.id)
    assert (
        old.state == "superseded" and old.decision is not None and old.decision["by"] == second.id
    )
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is not None and t.canary.ref == "v3"
    assert second.rounds == [] and [r.id for r in list_loops(ws, active=True)] == [second.id]
    # ticks advance only the live loop; the superseded one stays as it ended
    advance_loops(ws, now=at(second, 1))
    assert get_loop(ws, first.id).generation == old.generation


def test_a_rollback_during_the_bake_moves_the_champion_pointer_back(ws: st.Workspace) -> None:
    spec = Canary(
        weight=0.5,
        watch="2s",
        interval="1s",
        bake="1h",
        promote_if=[Check("error_rate", min_requests=10)],
        rollback_if=[],
    )
    run = start_canary(ws, "churn", 2, spec)
    serve(ws, rows(60, 8))
    assert advance(ws, run.id, now=at(run, 2)).state == "baking"
    out = abort(ws, run.id, reason="a bad night")
    assert (
        out.state == "rolled_back"
        and out.decision is not None
        and out.decision["reasons"] == ["a bad night"]
    )
    m = get_model(ws, "churn")
    assert m["aliases"]["champion"] == 1 and m["alias_history"][-1]["action"] == "rollback"
    assert serve(ws, rows(10, 9)) == {1: 10}


def test_a_step_decided_on_a_stale_state_is_not_applied(ws: st.Workspace) -> None:
    from strataml.pipelines._loop_store import commit

    spec = Canary(
        weight=0.5, promote_if=[Check("error_rate", min_requests=10)], rollback_if=[], **QUICK
    )
    run = start_canary(ws, "churn", 2, spec)
    moved = advance(ws, run.id, now=at(run, 1))
    assert moved.generation == run.generation + 1
    assert (
        commit(ws, run, {"state": "rolled_back"}) is None
    )  # decided on generation 1, which is gone
    assert get_loop(ws, run.id).state == "canary"


def test_a_canary_needs_a_champion_and_a_different_version(ws: st.Workspace) -> None:
    with pytest.raises(st.StrataError, match="already the champion"):
        start_canary(ws, "churn", 1)
    with pytest.raises(st.StrataError, match="no version 9"):
        start_canary(ws, "churn", 9)
    st.set_traffic(ws.catalog, "churn", {"ab": [{"ref": "v1", "weight": 0.95}]})
    with pytest.raises(st.StrataError, match="does not fit"):
        start_canary(ws, "churn", 2, Canary(weight=0.1))
    assert list_loops(ws) == []


def test_the_cli_lists_advances_and_aborts_loops(
    ws: st.Workspace, cli_env: dict[str, str], python: str
) -> None:
    import orjson

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "strataml", "pipelines", *args, "-w", str(ws.root)],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    from strataml.spine import utcnow

    # started ten minutes ago: its first round (every minute) is due, its watch (an hour) is not over
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(weight=0.2, watch="1h", interval="1m", rollback_if=[]),
        now=utcnow() - dt.timedelta(minutes=10),
    )
    listed = cli("loops", "--active", "--json")
    assert listed.returncode == 0, listed.stderr
    (doc,) = orjson.loads(listed.stdout)
    assert (doc["id"], doc["state"], doc["canary_version"], doc["canary"]["weight"]) == (
        run.id,
        "canary",
        2,
        0.2,
    )
    advanced = cli("advance", "--json")
    assert advanced.returncode == 0, advanced.stderr
    (after,) = orjson.loads(advanced.stdout)
    assert after["state"] == "canary" and len(after["rounds"]) == 1
    refused = cli("abort", "zzzz")
    assert refused.returncode != 0 and "no loop run 'zzzz'" in refused.stderr + refused.stdout
    aborted = cli("abort", run.id[:10], "--reason", "changed our mind", "--json")
    assert aborted.returncode == 0, aborted.stderr
    assert orjson.loads(aborted.stdout)["state"] == "rolled_back"
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is None


def test_a_running_gateway_rolls_back_during_the_bake_without_loading_anything(
    ws: st.Workspace,
) -> None:
    import time

    from starlette.testclient import TestClient

    from strataml.serving import GatewayConfig, create_app, create_key

    key = create_key(ws.catalog, ["predict:churn"])[1]
    h = {"authorization": f"Bearer {key}"}
    insts = rows(40, 13)
    spec = Canary(
        weight=0.5,
        watch="2s",
        interval="1s",
        bake="1h",
        promote_if=[Check("error_rate", min_requests=5)],
        rollback_if=[],
    )
    run = start_canary(ws, "churn", 2, spec)

    def versions(c: TestClient) -> set[int]:
        return {
            c.post("/v1/models/churn/predict", json={"instances": [i]}, headers=h).json()["version"]
            for i in insts
        }

    def until(c: TestClient, want: set[int]) -> set[int]:
        deadline = time.monotonic() + 60
        got = versions(c)
        while got != want and time.monotonic() < deadline:
            time.sleep(0.2)
            got = versions(c)
        return got

    with TestClient(create_app(ws, None, GatewayConfig(ratelimit_url="memory://"))) as c:
        assert versions(c) == {1, 2}  # both versions loaded and answering
        assert advance(ws, run.id, now=at(run, 2)).state == "baking"
        assert until(c, {2}) == {2}
        # the artifacts leave the disk: a rollback that had to load a version would fail now
        for v in get_model(ws, "churn")["versions"]:
            Path(ws.artifacts.uri(v["sha256"])).unlink()
        abort(ws, run.id, reason="regret")
        assert until(c, {1}) == {1}


def test_quality_and_prediction_drift_checks_read_the_monitoring_layer(ws: st.Workspace) -> None:
    # before labels arrive, quality is the estimate (calibrated on each version's held-out rows), like with like
    spec = Canary(
        weight=0.5,
        rollback_if=[],
        promote_if=[
            Check("roc_auc", margin=0.5, min_requests=20),
            Check("prediction_drift", min_requests=20),
        ],
        **QUICK,
    )
    run = start_canary(ws, "churn", 2, spec)
    serve(ws, rows(200, 14))
    rnd = advance(ws, run.id, now=at(run, 1)).rounds[-1]
    quality, drift = rnd["promote_if"]
    assert (
        quality["outcome"] == "pass"
        and quality["figures"]["canary_source"]
        == quality["figures"]["champion_source"]
        == "estimated"
    )
    assert (
        0.5 <= quality["figures"]["canary"] <= 1.0 and 0.5 <= quality["figures"]["champion"] <= 1.0
    )
    assert (
        drift["outcome"] in ("pass", "fail")
        and drift["figures"]["test"] == "ks"
        and drift["figures"]["p_value"] is not None
    )
    assert set(rnd["figures"]["quality"]) == {"1", "2"}


def test_realised_quality_once_labels_arrive_rolls_back_a_worse_canary(ws: st.Workspace) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .loop_setup import serve_answers

    spec = Canary(
        weight=0.5,
        rollback_if=[],
        promote_if=[Check("roc_auc", margin=0.05, min_requests=20)],
        labels="churn_labels",
        **QUICK,
    )
    run = start_canary(ws, "churn", 2, spec)
    answers = serve_answers(ws, rows(160, 15))
    # the labels say the champion ranked everyone right and the canary everyone wrong
    truth = [int((a["predictions"][0] >= 0.5) == (a["version"] == 1)) for a in answers]
    labels = st.Contract(
        "churn_labels",
        columns=[
            st.Column("request_id", "string"),
            st.Column("instance", "int"),
            st.Column("churned", "int"),
        ],
    )
    path = Path(ws.scratch_dir()) / "labels.parquet"
    pq.write_table(
        pa.table(
            {
                "request_id": [a["request_id"] for a in answers],
                "instance": [0] * len(answers),
                "churned": truth,
            }
        ),
        path,
    )
    assert st.ingest(ws, str(path), contract=labels).status == "created"
    out = advance(ws, run.id, now=at(run, 2))
    check = out.rounds[-1]["promote_if"][0]
    assert check["figures"]["canary_source"] == "realised" and check["outcome"] == "fail", check
    assert check["figures"]["champion"] > check["figures"]["canary"]
    assert out.state == "rolled_back"


def test_a_running_gateway_loads_the_canary_before_its_first_request(ws: st.Workspace) -> None:
    import time

    from starlette.testclient import TestClient

    from strataml.serving import GatewayConfig, create_app

    app = create_app(ws, None, GatewayConfig(ratelimit_url="memory://"))
    with TestClient(app):
        gw = app.state.gateway
        assert gw.models.cached("churn", "v2") is None
        start_canary(ws, "churn", 2, Canary(weight=0.1, **QUICK))
        deadline = time.monotonic() + 60
        while gw.models.cached("churn", "v2") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        loaded = gw.models.cached("churn", "v2")
        assert loaded is not None and loaded.version == 2  # no request was sent


def test_a_tick_steps_only_the_loops_with_something_due(ws: st.Workspace) -> None:
    """advance_loops leaves alone a loop with nothing due; whatever the state, such a loop
    is one its step would have left as it was."""
    from strataml.pipelines import approve
    from strataml.pipelines._loop import _due, _step

    spec = Canary(
        weight=0.5,
        promote_if=[Check("error_rate", min_requests=10)],
        rollback_if=[Check("error_rate", vs=None, max=0.5, min_requests=100_000)],  # watches, never decides
        approval=True,
        approval_timeout="1h",
        watch="2s",
        interval="2s",
        bake="1s",  # ends before the next round of checks would be due
    )
    run = start_canary(ws, "churn", 2, spec)
    serve(ws, rows(60, 5))
    offsets = [0, 0.5, 1, 1.99, 2, 2.5, 3, 3.6, 4, 100, 3601, 3700]

    def only_due_ones_step(loop) -> int:
        skipped = 0
        for s in offsets:
            if not _due(loop, at(run, s)):
                assert _step(ws, loop, at(run, s)) is loop, (loop.state, s)
                skipped += 1
        return skipped

    assert only_due_ones_step(get_loop(ws, run.id)) == 4  # the canary before its first round
    assert [r.generation for r in advance_loops(ws, now=at(run, 0.5))] == [run.generation]
    waiting = advance(ws, run.id, now=at(run, 2))
    assert waiting.state == "approval" and only_due_ones_step(waiting) > 0
    approve(ws, "churn@2", actor="alice", now=at(run, 2.5))
    baking = get_loop(ws, run.id)
    assert baking.state == "baking" and only_due_ones_step(baking) > 0
    (ticked,) = advance_loops(ws, now=at(run, 3.6))  # the bake is over before another round is due
    assert ticked.state == "promoted"
