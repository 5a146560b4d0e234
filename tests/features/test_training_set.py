"""Point-in-time training sets: exact semantics, leakage, order, lineage and bad input."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import strataml as st
from features.conftest import LABELS, TX, USER, at, labels, put, tx
from strataml.data import Column, Contract, get_version
from strataml.data import _tables as schema
from strataml.errors import NotFound
from strataml.features import (
    FeatureDefinitionError,
    FeatureError,
    apply,
    build_training_set,
)
from strataml.spine import list_events


def spend_view(**kw: object) -> st.FeatureView:
    return st.FeatureView(
        "spend", entity=USER, source="tx", ttl=kw.pop("ttl", "2h"),
        features=kw.pop("features", [
            st.Feature("amount_x10", expr="amount * 10"),
            st.Feature("spend_24h", agg="sum", column="amount", window="24h"),
            st.Feature("tx_1h", agg="count", window="1h"),
            st.Feature("last_amount", agg="last", column="amount", window="7d"),
        ]),
        **kw,  # type: ignore[arg-type]
    )


def test_semantics_on_a_hand_computed_example(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0)), ("u1", 2.0, at(1)), ("u2", 3.0, at(1)), ("u1", 4.0, at(5))]), TX)
    put(fws, labels([("u1", at(1)), ("u1", at(2)), ("u2", at(3)), ("u3", at(3)), ("u1", at(5))]), LABELS)
    fws.definitions.add(spend_view())
    ts = build_training_set(fws, "labels", ["spend"])
    assert ts.table.column_names == ["user_id", "ts", "y", "amount_x10", "spend_24h", "tx_1h", "last_amount"]
    assert ts.feature_columns == ["amount_x10", "spend_24h", "tx_1h", "last_amount"]
    got = [tuple(r.values())[2:] for r in ts.table.to_pylist()]
    assert got == [
        (0, 10.0, 1.0, 1, 1.0),  # u1@1h: only the 0h row is strictly before
        (1, 20.0, 3.0, 1, 2.0),  # u1@2h: latest 1h row; 1h window [1h, 2h) holds it
        (2, 30.0, 3.0, None, 3.0),  # u2@3h: 1h row exactly ttl (2h) old is kept; nothing in [2h, 3h)
        (3, None, None, None, None),  # u3: no source rows at all, yet the row is kept
        (4, None, 3.0, None, 2.0),  # u1@5h: the 5h row is not before t; the 1h row is older than ttl
    ]


def test_a_source_row_at_exactly_t_is_never_used(fws: st.Workspace) -> None:
    """Leakage guard: an event at the label's own instant is the label's future."""
    put(fws, tx([("u1", 100.0, at(10))]), TX)
    put(fws, labels([("u1", at(10)), ("u1", at(10, 0.001)), ("u1", at(9, 59))]), LABELS)
    fws.definitions.add(spend_view())
    rows = build_training_set(fws, "labels", ["spend"], record=False).table.to_pylist()
    assert [r["amount_x10"] for r in rows] == [None, 1000.0, None]
    assert [r["spend_24h"] for r in rows] == [None, 100.0, None]
    assert [r["tx_1h"] for r in rows] == [None, 1, None]
    assert [r["last_amount"] for r in rows] == [None, 100.0, None]


def test_window_start_is_inclusive_and_ttl_is_a_closed_bound(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 5.0, at(0))]), TX)
    put(fws, labels([("u1", at(1)), ("u1", at(1, 0.001)), ("u1", at(2)), ("u1", at(2, 0.001))]), LABELS)
    fws.definitions.add(spend_view())
    rows = build_training_set(fws, "labels", ["spend"], record=False).table.to_pylist()
    assert [r["tx_1h"] for r in rows] == [1, None, None, None]  # [t-1h, t): 0h is in for t=1h only
    assert [r["amount_x10"] for r in rows] == [50.0, 50.0, 50.0, None]  # ttl 2h: t-ts <= 2h


def test_every_label_row_once_in_input_order_with_duplicates_and_nulls(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0)), ("u2", 2.0, at(0))]), TX)
    order = [("u2", at(2)), ("u1", at(1)), (None, at(1)), ("u1", at(1)), ("u1", None), ("u9", at(1)), ("u2", at(2))]
    put(fws, labels(order), LABELS)
    fws.definitions.add(spend_view())
    rows = build_training_set(fws, "labels", ["spend"], record=False).table.to_pylist()
    assert [r["y"] for r in rows] == list(range(len(order)))
    assert [r["amount_x10"] for r in rows] == [20.0, 10.0, None, 10.0, None, None, 20.0]


def test_rows_with_the_same_key_and_time_resolve_to_the_last_stored(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0)), ("u1", 2.0, at(0)), ("u1", 3.0, at(0))]), TX)
    put(fws, labels([("u1", at(1))]), LABELS)
    fws.definitions.add(spend_view())
    row = build_training_set(fws, "labels", ["spend"], record=False).table.to_pylist()[0]
    assert row["amount_x10"] == 30.0
    assert row["last_amount"] == 3.0
    assert row["spend_24h"] == 6.0


def test_multi_column_entity_keys(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0)), ("u1", 2.0, at(0, 30))]), TX)
    lab = Contract("ml", timestamp="ts", columns=[Column("user_id", "string"), Column("merchant", "string"), Column("ts", "timestamp")])
    put(fws, {"user_id": ["u1", "u1", "u1"], "merchant": ["m0", "m1", "m2"], "ts": [at(1)] * 3}, lab)
    um = st.Entity("user_merchant", key=["user_id", "merchant"])
    fws.definitions.add(st.FeatureView("um", entity=um, source="tx", ttl="1d", features=[
        st.Feature("a", expr="amount"), st.Feature("n", agg="count", window="1d")]))
    rows = build_training_set(fws, "ml", ["um"], record=False).table.to_pylist()
    assert [(r["a"], r["n"]) for r in rows] == [(1.0, 1), (2.0, 1), (None, None)]


def test_request_features_are_computed_from_the_label_row(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0))]), TX)
    put(fws, labels([("u1", at(1)), ("u2", at(2))]), LABELS)
    view = st.FeatureView("req", features=[st.RequestFeature("y_sq", expr="y * y + 1", fields={"y": "int"})])
    fws.definitions.add(view)
    fws.definitions.add(spend_view())
    ts = build_training_set(fws, "labels", ["spend", "req"], full_names=True, record=False)
    assert ts.feature_columns == ["spend__amount_x10", "spend__spend_24h", "spend__tx_1h", "spend__last_amount", "req__y_sq"]
    assert ts.table.column("req__y_sq").to_pylist() == [1, 2]


def test_training_set_is_recorded_with_lineage_and_is_reproducible(fws: st.Workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src_ref = put(fws, tx([("u1", 1.0, at(0)), ("u1", 2.0, at(1))]), TX)
    lab_ref = put(fws, labels([("u1", at(1)), ("u1", at(3))]), LABELS)
    v1 = spend_view()
    fws.definitions.add(v1)
    out = tmp_path / "ts.parquet"
    first = build_training_set(fws, "labels", ["spend"], out=str(out))
    assert first.ref is not None and first.ref.startswith("training_set_") and first.ref.endswith("@v1")
    assert first.lineage["labels"] == lab_ref
    assert first.lineage["views"] == {"spend": v1.version}
    assert first.lineage["sources"] == {"tx": src_ref}
    assert pq.read_table(out).equals(first.table)
    dv = get_version(fws, first.ref)
    assert dv.rows == 2 and dv.lineage == first.lineage
    assert dv.to_arrow().to_pylist() == first.table.to_pylist()
    with fws.catalog.read() as conn:
        kind = conn.execute(sa.select(schema.datasets.c.kind).where(schema.datasets.c.name == dv.name)).scalar()
    assert kind == "training_set"
    assert any(e.subject == dv.name and e.payload.get("kind") == "training_set" for e in list_events(fws.catalog, kind="dataset."))
    # the same inputs give the same version; a changed definition makes a new view version
    assert build_training_set(fws, "labels", ["spend"]).ref == first.ref
    v2 = spend_view(ttl="30m")
    fws.definitions.add(v2)
    second = build_training_set(fws, "labels", ["spend"])
    assert second.ref != first.ref and second.lineage["views"]["spend"] == v2.version != v1.version
    assert second.table.column("amount_x10").to_pylist() == [None, None]
    # the old version stays buildable by name@version, with identical output
    again = build_training_set(fws, lab_ref, [f"spend@{v1.version}"], record=False)
    assert again.table.equals(first.table)


def test_apply_registers_versions_and_emits_events(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0))]), TX)
    fws.definitions.add(spend_view())
    first = apply(fws)
    assert [(r["name"], r["status"]) for r in first] == [("spend", "registered")]
    assert first[0]["features"] == {"amount_x10": "DOUBLE", "spend_24h": "DOUBLE", "tx_1h": "BIGINT", "last_amount": "DOUBLE"}
    assert [r["status"] for r in apply(fws)] == ["unchanged"]
    fws.definitions.add(spend_view(ttl="1d"))
    assert [r["status"] for r in apply(fws)] == ["registered"]
    assert len(list_events(fws.catalog, kind="feature_view.registered")) == 2


@pytest.mark.parametrize(
    ("labels_rows", "contract", "message"),
    [
        ({"uid": ["u1"], "ts": [at(1)]}, Contract("bad", timestamp="ts", columns=[Column("uid", "string"), Column("ts", "timestamp")]), "has no column 'user_id'"),
        ({"user_id": ["u1"], "when": [at(1)]}, Contract("bad", columns=[Column("user_id", "string"), Column("when", "timestamp")]), "no timestamp column"),
        ({"user_id": [1], "ts": [at(1)]}, Contract("bad", timestamp="ts", columns=[Column("user_id", "int"), Column("ts", "timestamp")]), "has type BIGINT but"),
    ],
)
def test_bad_labels_are_clear_errors(fws: st.Workspace, labels_rows: dict[str, list[object]], contract: Contract, message: str) -> None:
    put(fws, tx([("u1", 1.0, at(0))]), TX)
    put(fws, labels_rows, contract)
    fws.definitions.add(spend_view())
    with pytest.raises(FeatureError, match=message) as info:
        build_training_set(fws, "bad", ["spend"])
    assert info.value.hint


def test_unknown_views_bad_windows_and_bad_expressions(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0))]), TX)
    put(fws, labels([("u1", at(1))]), LABELS)
    with pytest.raises(NotFound, match="no feature view named 'nope'"):
        build_training_set(fws, "labels", ["nope"])
    with pytest.raises(FeatureDefinitionError, match="'24 hours' is not a duration"):
        st.Feature("x", agg="sum", column="amount", window="24 hours")
    with pytest.raises(FeatureDefinitionError, match="unknown aggregation 'median'"):
        st.Feature("x", agg="median", column="amount", window="1d")
    fws.definitions.add(spend_view(features=[st.Feature("x", expr="no_such_column + 1")]))
    with pytest.raises(FeatureDefinitionError, match=r"spend\.x does not compile"):
        apply(fws)
    fws.definitions.add(spend_view(features=[st.Feature("x", agg="sum", column="nope", window="1d")]))
    with pytest.raises(FeatureDefinitionError, match="aggregates column 'nope'"):
        build_training_set(fws, "labels", ["spend"])
    with pytest.raises(FeatureDefinitionError, match="no feature 'zzz'"):
        spend_view().feature("zzz")


def test_feature_names_clashing_with_labels_need_full_names(fws: st.Workspace) -> None:
    put(fws, tx([("u1", 1.0, at(0))]), TX)
    put(fws, labels([("u1", at(1))]), LABELS)
    fws.definitions.add(spend_view(features=[st.Feature("y", expr="amount")]))
    with pytest.raises(FeatureError, match="clashes with a column of the labels"):
        build_training_set(fws, "labels", ["spend"])
    ts = build_training_set(fws, "labels", ["spend"], full_names=True)
    assert ts.feature_columns == ["spend__y"] and ts.table.column("spend__y").to_pylist() == [1.0]
    assert not math.isnan(ts.table.column("y").to_pylist()[0])
