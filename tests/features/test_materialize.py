"""Materialisation, online lookups, request features, skew, crash safety and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import strataml as st
from features.conftest import LABELS, TX, USER, at, labels, put, tx
from strataml import synth
from strataml.features import (
    FeatureInputError,
    OnlineStore,
    ViewReader,
    build_training_set,
    check_skew,
    compute_request_features,
    get_online_features,
    materialize,
    open_online_store,
)
from strataml.features.online import encode_value
from strataml.spine import list_events


def user_view(with_request: bool = False) -> st.FeatureView:
    request = [st.RequestFeature("amount_over_10", expr="amount > 10", fields={"amount": "float"})] if with_request else []
    return st.FeatureView("user_spend", entity=USER, source="tx", ttl="3h", features=[
        st.Feature("last_amount_x2", expr="amount * 2"),
        st.Feature("merchant", expr="merchant"),
        st.Feature("spend_2h", agg="sum", column="amount", window="2h"),
        st.Feature("n_1d", agg="count", window="1d"),
        st.Feature("avg_1d", agg="mean", column="amount", window="1d"),
        st.Feature("sd_1d", agg="stddev", column="amount", window="1d"),
        st.Feature("merchants_1d", agg="count_distinct", column="merchant", window="1d"),
        *request,
    ])


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        s = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    else:
        s = open_online_store(f"{request.getfixturevalue('redis_url')}?prefix=mat-{uuid.uuid4().hex}:")
    yield s
    if request.param == "redis":
        client = s._c()  # type: ignore[attr-defined]
        for key in client.scan_iter(match=s.prefix + "*"):  # type: ignore[attr-defined]
            client.delete(key)
    s.close()


def random_source(ws: st.Workspace, n: int = 600, users: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rows = [(f"u{rng.integers(users)}", float(rng.integers(1, 30)), at(minutes=int(rng.integers(0, 48 * 60)))) for _ in range(n)]
    put(ws, tx(rows), TX)


def test_materialized_values_equal_the_offline_values_at_as_of(fws: st.Workspace, store: OnlineStore) -> None:
    random_source(fws)
    fws.definitions.add(user_view())
    as_of = at(40)
    report = materialize(fws, ["user_spend"], as_of=as_of, store=store)["views"][0]
    assert report["mode"] == "full" and report["entities"] > 0
    keys = [{"user_id": f"u{i}"} for i in range(45)]  # u40..u44 never occur
    online = get_online_features(fws, ["user_spend"], keys, store=store)
    put(fws, labels([(k["user_id"], as_of) for k in keys]), LABELS)
    offline = build_training_set(fws, "labels", ["user_spend"], record=False).table.to_pylist()
    for on, off in zip(online, offline, strict=True):
        assert set(on) == {"last_amount_x2", "merchant", "spend_2h", "n_1d", "avg_1d", "sd_1d", "merchants_1d"}
        for name, v in on.items():
            assert v == pytest.approx(off[name], rel=1e-9) if isinstance(v, float) else v == off[name], (name, on, off)
    assert online[-1] == dict.fromkeys(online[-1])  # unknown entity: nulls, not an error
    skew = check_skew(fws, "user_spend", sample=50, store=store)
    assert skew["ok"] and skew["checked"] == 40 and skew["mismatches"] == []
    assert list_events(fws.catalog, kind="feature_view.materialized")[-1].payload["entities"] == report["entities"]


def test_non_finite_values_are_served_as_null(fws: st.Workspace, store: OnlineStore) -> None:
    # JSON has no NaN or infinity: such values are stored as null, and the skew check agrees
    put(fws, tx([("u1", 0.0, at(1)), ("u2", 4.0, at(1))]), TX)
    fws.definitions.add(st.FeatureView("ratios", entity=USER, source="tx", ttl="3h", features=[
        st.Feature("log_amount", expr="ln(amount)"),
        st.Feature("zero_over_zero", expr="amount / amount - 1"),
    ]))
    materialize(fws, ["ratios"], as_of=at(2), store=store)
    got = get_online_features(fws, ["ratios"], [{"user_id": "u1"}, {"user_id": "u2"}], store=store)
    assert got[0] == {"log_amount": None, "zero_over_zero": None}
    assert got[1] == {"log_amount": pytest.approx(np.log(4.0)), "zero_over_zero": 0.0}
    skew = check_skew(fws, "ratios", sample=10, store=store)
    assert skew["ok"] and skew["mismatches"] == []


def test_skew_check_reports_values_that_differ(fws: st.Workspace, store: OnlineStore) -> None:
    random_source(fws)
    fws.definitions.add(user_view())
    materialize(fws, ["user_spend"], as_of=at(40), store=store)
    token = store.begin("user_spend", full=False)
    got = store.get("user_spend", [{"user_id": "u3"}], with_meta=True)[0]
    assert got is not None
    meta = store.meta("user_spend") or {}
    store.write_batch("user_spend", token, [("u3", encode_value(meta["features"], got | {"spend_2h": 123456.0}))])
    store.commit("user_spend", token, meta)
    skew = check_skew(fws, "user_spend", sample=50, store=store)
    assert not skew["ok"]
    assert [(m["key"], m["feature"], m["online"]) for m in skew["mismatches"]] == [({"user_id": "u3"}, "spend_2h", 123456.0)]


def test_incremental_runs_pick_up_new_and_late_rows_only(fws: st.Workspace, store: OnlineStore) -> None:
    put(fws, tx([("u1", 1.0, at(1)), ("u2", 2.0, at(1))]), TX)
    fws.definitions.add(user_view())
    materialize(fws, ["user_spend"], as_of=at(2), store=store)
    # a new row for u1 after the watermark, and a late row for u3 from before it
    put(fws, tx([("u1", 5.0, at(2, 30)), ("u3", 7.0, at(1, 30))], start=100), TX)
    r = materialize(fws, ["user_spend"], incremental=True, as_of=at(3), store=store)["views"][0]
    assert r["mode"] == "incremental" and r["entities"] == 2
    got = get_online_features(fws, ["user_spend"], [{"user_id": u} for u in ("u1", "u2", "u3")], store=store)
    assert [g["last_amount_x2"] for g in got] == [10.0, 4.0, 14.0]
    assert [g["spend_2h"] for g in got] == [6.0, 2.0, 7.0]  # window [1h, 3h); u2 keeps its values as of 2h
    assert check_skew(fws, "user_spend", store=store)["ok"]
    # an incremental run of a changed definition falls back to a full run
    fws.definitions.add(st.FeatureView("user_spend", entity=USER, source="tx", ttl="1h", features=[st.Feature("a", expr="amount")]))
    r2 = materialize(fws, ["user_spend"], incremental=True, as_of=at(3), store=store)["views"][0]
    assert r2["mode"] == "full" and "reason" in r2


def test_lookups_refuse_wrong_key_types_and_missing_columns(fws: st.Workspace, store: OnlineStore) -> None:
    put(fws, tx([("u1", 1.0, at(1))]), TX)
    fws.definitions.add(user_view())
    materialize(fws, ["user_spend"], as_of=at(2), store=store)
    with pytest.raises(FeatureInputError, match="user_id=7 is of type int, but feature view 'user_spend' keys 'user_id' as a string"):
        get_online_features(fws, ["user_spend"], [{"user_id": 7}], store=store)
    with pytest.raises(FeatureInputError, match="lacks 'user_id'"):
        get_online_features(fws, ["user_spend"], [{"uid": "u1"}], store=store)
    from strataml.errors import NotFound

    with pytest.raises(NotFound, match="no feature view named 'ghost'"):
        get_online_features(fws, ["ghost"], [{"user_id": "u1"}], store=store)


def test_a_view_reader_answers_as_the_lookup_does(fws: st.Workspace) -> None:
    """The serving path's prepared reader: the same values, nulls and errors as get_online_features."""
    put(fws, tx([("u1", 1.0, at(1)), ("u2", 2.0, at(1))]), TX)
    fws.definitions.add(user_view())
    materialize(fws, ["user_spend"], as_of=at(2))  # into the workspace's own online store
    read = ViewReader(fws, "user_spend")
    batch = [{"user_id": "u2"}, {"user_id": "nobody"}, {"user_id": "u1"}]
    for keys in ([{"user_id": "u1"}], batch):
        assert read(keys) == get_online_features(fws, ["user_spend"], keys)
    assert read([{"user_id": "nobody"}]) == [dict.fromkeys(read.features)]
    assert [read([k])[0] for k in batch] == read(batch) and read(batch)[0]["last_amount_x2"] == 4.0  # one key at a time, as serving reads, or a batch
    with pytest.raises(FeatureInputError, match="user_id=7 is of type int"):
        read([{"user_id": 7}])
    with pytest.raises(FeatureInputError, match="lacks 'user_id'"):
        read([{"uid": "u1"}])


def test_request_features_use_the_training_expression(fws: st.Workspace) -> None:
    view = user_view(with_request=True)
    lab = st.Contract("req_labels", timestamp="ts", columns=[
        st.Column("user_id", "string"), st.Column("ts", "timestamp"), st.Column("amount", "float", nullable=True)])
    put(fws, tx([("u1", 1.0, at(0))]), TX)
    amounts = [3.0, 10.0, 10.5, None]
    put(fws, {"user_id": ["u1"] * 4, "ts": [at(1)] * 4, "amount": amounts}, lab)
    fws.definitions.add(view)
    trained = build_training_set(fws, "req_labels", ["user_spend"], record=False).table.column("amount_over_10").to_pylist()
    served = [r["amount_over_10"] for r in compute_request_features(view, [{"amount": a} for a in amounts])]
    assert trained == served == [False, False, True, None]
    assert compute_request_features(view.request_features, [{"amount": 11}]) == [{"amount_over_10": True}]
    with pytest.raises(FeatureInputError, match="failed on the payload"):
        compute_request_features(view, [{"amount": "lots"}])


# --- the command line and crash safety ------------------------------------------------------------

DEFINITIONS = '''
import strataml as st

transactions = st.Contract(
    "transactions", key="tx_id", timestamp="ts",
    columns=[
        st.Column("tx_id", "string"), st.Column("user_id", "string"), st.Column("amount", "float", min=0),
        st.Column("refund", "float", nullable=True), st.Column("country", "string"),
        st.Column("merchant", "string", nullable=True), st.Column("ts", "timestamp"),
    ],
    extra_columns="drop",
)
fraud_labels = st.Contract(
    "fraud_labels", timestamp="ts",
    columns=[st.Column("user_id", "string"), st.Column("ts", "timestamp"), st.Column("is_fraud", "int")],
)
user = st.Entity("user", key="user_id")
user_spend = st.FeatureView(
    "user_spend", entity=user, source="transactions", ttl="30d",
    features=[
        st.Feature("amount", expr="amount"),
        st.Feature("spend_24h", agg="sum", column="amount", window="24h"),
        st.Feature("tx_count_7d", agg="count", window="7d"),
    ],
)
'''


def run(python: str, env: dict[str, str], ws: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([python, "-m", "strataml", *args, "--workspace", str(ws)], env=env, capture_output=True, text=True, timeout=180)
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture
def cli_ws(tmp_path: Path, python: str, cli_env: dict[str, str]) -> Path:
    ws = tmp_path / "cli"
    run(python, cli_env, ws.parent, "init", str(ws), "--json") if False else subprocess.run(
        [python, "-m", "strataml", "init", str(ws), "--json"], env=cli_env, check=True, capture_output=True)
    (ws / "definitions.py").write_text(DEFINITIONS)
    data = synth.transactions(3000, seed=3, users=200, bad_fraction=0.0, days=10)
    synth.write_csv(data, ws / "tx.csv")
    run(python, cli_env, ws, "ingest", str(ws / "tx.csv"), "--contract", "transactions", "--json")
    rng = np.random.default_rng(1)
    lab = pa.table({
        "user_id": [f"u{i}" for i in rng.integers(0, 220, 500)],
        "ts": [(dt.datetime(2026, 1, 1) + dt.timedelta(hours=float(h))).isoformat() for h in rng.uniform(0, 260, 500)],
        "is_fraud": rng.integers(0, 2, 500).astype(str),
    })
    synth.write_csv(lab, ws / "labels.csv")
    run(python, cli_env, ws, "ingest", str(ws / "labels.csv"), "--contract", "fraud_labels", "--json")
    return ws


def test_cli_end_to_end(cli_ws: Path, python: str, cli_env: dict[str, str]) -> None:
    applied = json.loads(run(python, cli_env, cli_ws, "features", "apply", "--json").stdout)
    assert applied[0]["name"] == "user_spend" and applied[0]["status"] == "registered"
    assert json.loads(run(python, cli_env, cli_ws, "features", "list", "--json").stdout)[0]["features"] == 3
    shown = json.loads(run(python, cli_env, cli_ws, "features", "show", "user_spend", "--json").stdout)
    assert [f["type"] for f in shown["features"]] == ["DOUBLE", "DOUBLE", "BIGINT"]
    out = cli_ws / "ts.parquet"
    built = json.loads(run(python, cli_env, cli_ws, "features", "training-set", "--labels", "fraud_labels",
                           "--features", "user_spend", "--out", str(out), "--full-names", "--json").stdout)
    assert built["rows"] == 500 and built["feature_columns"] == ["user_spend__amount", "user_spend__spend_24h", "user_spend__tx_count_7d"]
    assert out.exists() and built["lineage"]["labels"] == "fraud_labels@v1"
    mat = json.loads(run(python, cli_env, cli_ws, "features", "materialize", "--as-of", "2026-01-11T12:00:00", "--json").stdout)
    assert mat["views"][0]["entities"] == 200
    got = json.loads(run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--json").stdout)
    assert got["features"]["tx_count_7d"] is not None and set(got["features"]) == {"amount", "spend_24h", "tx_count_7d"}
    missing = json.loads(run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=nobody", "--json").stdout)
    assert missing["features"] == {"amount": None, "spend_24h": None, "tx_count_7d": None}
    only = json.loads(run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--feature", "spend_24h", "--json").stdout)
    assert only["features"] == {"spend_24h": got["features"]["spend_24h"]}
    unknown = run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--feature", "nope", ok=False)
    assert unknown.returncode == 2 and "has no feature 'nope'" in unknown.stderr
    skew = json.loads(run(python, cli_env, cli_ws, "features", "check-skew", "user_spend", "--sample", "50", "--json").stdout)
    assert skew["ok"] and skew["checked"] == 50
    bad = run(python, cli_env, cli_ws, "features", "training-set", "--labels", "transactions", "--features", "nope", ok=False)
    assert bad.returncode == 2 and "no feature view named 'nope'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("point", ["materialize.after_batch", "materialize.before_commit"])
def test_a_crash_while_materializing_keeps_the_previous_values(cli_ws: Path, python: str, cli_env: dict[str, str], point: str) -> None:
    run(python, cli_env, cli_ws, "features", "materialize", "--as-of", "2026-01-11T12:00:00", "--json")
    before = json.loads(run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--json").stdout)
    newer = synth.transactions(400, seed=9, start_id=10_000, users=200, bad_fraction=0.0, days=1,
                               start=dt.datetime(2026, 1, 11))
    synth.write_csv(newer, cli_ws / "tx2.csv")
    run(python, cli_env, cli_ws, "ingest", str(cli_ws / "tx2.csv"), "--contract", "transactions", "--json")
    crashed = run(python, cli_env | {"STRATA_FAILPOINT": point}, cli_ws, "features", "materialize", "--as-of", "2026-01-11T12:00:00", "--json", ok=False)
    assert crashed.returncode == -9
    after = json.loads(run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--json").stdout)
    assert after == before
    run(python, cli_env, cli_ws, "features", "materialize", "--as-of", "2026-01-11T12:00:00", "--json")
    final = json.loads(run(python, cli_env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--json").stdout)
    assert final != before
    assert json.loads(run(python, cli_env, cli_ws, "features", "check-skew", "user_spend", "--json").stdout)["ok"]


def test_online_store_url_comes_from_the_environment(cli_ws: Path, python: str, cli_env: dict[str, str], redis_url: str) -> None:
    prefix = f"cli-{uuid.uuid4().hex}:"
    env = cli_env | {"STRATA_ONLINE": f"{redis_url}?prefix={prefix}"}
    mat = json.loads(run(python, env, cli_ws, "features", "materialize", "--as-of", "2026-01-11T12:00:00", "--json").stdout)
    assert mat["store"].startswith("redis://")
    got = json.loads(run(python, env, cli_ws, "features", "get", "user_spend", "--key", "user_id=u7", "--json").stdout)
    assert got["features"]["tx_count_7d"] is not None
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*"))
    assert keys
    client.delete(*keys)


test_online_store_url_comes_from_the_environment = pytest.mark.redis(test_online_store_url_comes_from_the_environment)
