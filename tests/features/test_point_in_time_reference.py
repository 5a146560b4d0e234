"""Training sets against a slow, obviously-correct reference on small random data."""

from __future__ import annotations

import datetime as dt
import math
import statistics
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as strat

import strataml as st
from features.conftest import LABELS, TX, USER, at, put
from strataml.features import build_training_set

TTL = dt.timedelta(minutes=30)
WINDOWS = {"w10": dt.timedelta(minutes=10), "w60": dt.timedelta(minutes=60)}
AGGS = ["count", "sum", "mean", "min", "max", "stddev", "last", "count_distinct"]


def view(source: str) -> st.FeatureView:
    feats = [st.Feature("doubled", expr="amount * 2"), st.Feature("merchant_now", expr="merchant")]
    for w in WINDOWS:
        for a in AGGS:
            col = None if a == "count" else ("merchant" if a == "count_distinct" else "amount")
            feats.append(st.Feature(f"{a}_{w}", agg=a, column=col, window=w[1:] + "m"))
    return st.FeatureView(f"v_{source}", entity=USER, source=source, ttl="30m", features=feats)


def reference(src: list[dict[str, Any]], lab: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The definition of point-in-time correctness, row by row."""
    out = []
    for lr in lab:
        k, t = lr["user_id"], lr["ts"]
        row: dict[str, Any] = {}
        before = [(i, s) for i, s in enumerate(src) if k is not None and t is not None and s["user_id"] == k and s["ts"] < t]
        latest = max(before, key=lambda p: (p[1]["ts"], p[0]))[1] if before else None
        ok = latest is not None and t - latest["ts"] <= TTL
        row["doubled"] = latest["amount"] * 2 if ok and latest["amount"] is not None else None  # type: ignore[index]
        row["merchant_now"] = latest["merchant"] if ok else None  # type: ignore[index]
        for w, span in WINDOWS.items():
            inside = [(i, s) for i, s in before if s["ts"] >= t - span]
            vals = [s["amount"] for _, s in inside if s["amount"] is not None]
            last = max(inside, key=lambda p: (p[1]["ts"], p[0]))[1]["amount"] if inside else None
            row[f"count_{w}"] = len(inside) or None
            row[f"sum_{w}"] = sum(vals) if vals else None
            row[f"mean_{w}"] = statistics.fmean(vals) if vals else None
            row[f"min_{w}"] = min(vals) if vals else None
            row[f"max_{w}"] = max(vals) if vals else None
            row[f"stddev_{w}"] = statistics.stdev(vals) if len(vals) > 1 else None
            row[f"last_{w}"] = last
            row[f"count_distinct_{w}"] = len({s["merchant"] for _, s in inside if s["merchant"] is not None}) if inside else None
        out.append(row)
    return out


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


minute = strat.integers(min_value=0, max_value=180)
source_rows = strat.lists(
    strat.tuples(strat.sampled_from(["a", "b", "c"]), strat.one_of(strat.none(), strat.integers(0, 50).map(float)),
                 strat.sampled_from(["m1", "m2", "m3"]), minute),
    min_size=1, max_size=40,
)
label_rows = strat.lists(
    strat.tuples(strat.one_of(strat.sampled_from(["a", "b", "c", "d"]), strat.none()), strat.one_of(minute, strat.none())),
    min_size=1, max_size=30,
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> st.Workspace:
    return st.Workspace.init(Path(tmp_path_factory.mktemp("pit")) / "ws", example=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(src=source_rows, lab=label_rows)
def test_training_set_matches_the_reference(ws: st.Workspace, src: list[tuple[Any, ...]], lab: list[tuple[Any, ...]]) -> None:
    tag = uuid.uuid4().hex[:8]
    source = [{"user_id": u, "amount": a, "merchant": m, "ts": at(minutes=t)} for u, a, m, t in src]
    put(ws, {
        "tx_id": [f"t{i}" for i in range(len(source))], "user_id": [s["user_id"] for s in source],
        "amount": [s["amount"] for s in source], "merchant": [s["merchant"] for s in source], "ts": [s["ts"] for s in source],
    }, TX, dataset=f"tx_{tag}")
    lrows = [{"user_id": u, "ts": at(minutes=t) if t is not None else None} for u, t in lab]
    put(ws, {"user_id": [r["user_id"] for r in lrows], "ts": [r["ts"] for r in lrows], "y": list(range(len(lrows)))},
        LABELS, dataset=f"labels_{tag}")
    v = view(f"tx_{tag}")
    got = build_training_set(ws, f"labels_{tag}", [v], record=False).table.to_pylist()
    want = reference(source, lrows)
    assert [g["y"] for g in got] == list(range(len(lrows)))
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        for name, expected in w.items():
            assert close(g[name], expected), f"label row {i} {lrows[i]}: {name} = {g[name]!r}, reference {expected!r}"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(src=source_rows, as_of=minute)
def test_materialized_values_match_the_reference(ws: st.Workspace, src: list[tuple[Any, ...]], as_of: int) -> None:
    """Materialisation computes values its own way (one grouped pass); it must agree too."""
    from strataml.features import get_online_features, materialize, open_online_store

    tag = uuid.uuid4().hex[:8]
    source = [{"user_id": u, "amount": a, "merchant": m, "ts": at(minutes=t)} for u, a, m, t in src]
    put(ws, {
        "tx_id": [f"t{i}" for i in range(len(source))], "user_id": [s["user_id"] for s in source],
        "amount": [s["amount"] for s in source], "merchant": [s["merchant"] for s in source], "ts": [s["ts"] for s in source],
    }, TX, dataset=f"tx_{tag}")
    v = view(f"tx_{tag}")
    ws.definitions.add(v)
    store = open_online_store(f"sqlite:///{ws.state_dir / f'online_{tag}.db'}")
    try:
        materialize(ws, [v.name], as_of=at(minutes=as_of), store=store)
        users = ["a", "b", "c", "d"]
        got = get_online_features(ws, [v.name], [{"user_id": u} for u in users], store=store)
    finally:
        store.close()
    want = reference(source, [{"user_id": u, "ts": at(minutes=as_of)} for u in users])
    for u, g, w in zip(users, got, want, strict=True):
        for name, expected in w.items():
            assert close(g[name], expected), f"user {u} as of minute {as_of}: {name} = {g[name]!r}, reference {expected!r}"
