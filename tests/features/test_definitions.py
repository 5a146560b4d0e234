"""Feature definitions: validation, canonical versions, discovery from definitions.py, the public API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import strataml as st
import strataml.features as features
from strataml.features import FeatureDefinitionError, parse_duration
from strataml.features._definitions import FeatureView


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("24h", 86400), ("7d", 604800), ("2w", 1209600), ("1.5h", 5400)])
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1.5s", "-1d", "0d", "1 day", "1y", "24 hours"])
def test_bad_durations_are_clear_errors(text: str) -> None:
    with pytest.raises(FeatureDefinitionError) as info:
        parse_duration(text)
    assert info.value.hint or "longer than zero" in str(info.value)


def test_windows_normalise_so_equal_definitions_share_a_version() -> None:
    user = st.Entity("user", key="user_id")
    a = st.FeatureView("v", entity=user, source="tx", ttl="1d", features=[st.Feature("s", agg="sum", column="amount", window="24h")])
    b = st.FeatureView("v", entity=user, source="tx", ttl=dt.timedelta(hours=24), features=[st.Feature("s", agg="sum", column="amount", window="1d")])
    assert a.version == b.version and a.features[0].window == "1d"
    c = st.FeatureView("v", entity=user, source="tx", ttl="1d", features=[st.Feature("s", agg="sum", column="amount", window="2d")])
    assert c.version != a.version
    assert FeatureView.from_dict(a.to_dict()) == a


def test_definition_mistakes_name_the_problem() -> None:
    user = st.Entity("user", key="user_id")
    cases = [
        (lambda: st.Feature("x"), "exactly one of expr="),
        (lambda: st.Feature("x", expr="a", agg="sum"), "exactly one of expr="),
        (lambda: st.Feature("x", agg="sum", window="1d"), "needs column="),
        (lambda: st.Feature("x", agg="sum", column="a"), "needs window="),
        (lambda: st.Feature("x", expr="a; DROP TABLE t"), "no ';'"),
        (lambda: st.Feature("_x", expr="a"), "identifier not starting with '_'"),
        (lambda: st.RequestFeature("r", expr="a + 1", fields={"a": "decimal"}), "unknown type 'decimal'"),
        (lambda: st.Entity("e", key=[]), "key must be"),
        (lambda: st.FeatureView("v", entity=user, source="tx", features=[]), "declares no features"),
        (lambda: st.FeatureView("v", entity=user, source="tx", features=[st.Feature("a", expr="1")]), "ttl= is required"),
        (lambda: st.FeatureView("v", source="tx", ttl="1d", features=[st.Feature("a", expr="1")]), "entity= must be"),
        (lambda: st.FeatureView("v", entity=user, source="tx", ttl="1d", features=[st.Feature("a", expr="1"), st.Feature("a", expr="2")]), "twice"),
        (lambda: st.FeatureView("v", entity=user, source="tx", ttl="1d", features=[st.Feature("user_id", expr="1")]), "clash with the entity key"),
        (lambda: st.FeatureView("bad name", entity=user, source="tx", ttl="1d", features=[st.Feature("a", expr="1")]), "invalid feature view name"),
    ]
    for make, message in cases:
        with pytest.raises(st.StrataError, match=message):
            make()


def test_views_are_found_in_definitions_py_and_applied(tmp_path: Path) -> None:
    ws = st.Workspace.init(tmp_path / "ws")
    (ws.root / "definitions.py").write_text(
        (ws.root / "definitions.py").read_text()
        + '\nuser = st.Entity("user", key="user_id")\n'
        'user_spend = st.FeatureView("user_spend", entity=user, source="transactions", ttl="30d",\n'
        '    features=[st.Feature("spend_24h", agg="sum", column="amount", window="24h")])\n'
    )
    ws = st.Workspace.open(ws.root)
    assert [v.name for v in ws.definitions.all("feature_view")] == ["user_spend"]
    assert [e.name for e in ws.definitions.all("entity")] == ["user"]
    # the source has no data yet: the view is registered all the same, and checked once data arrives
    assert [(r["name"], r["status"]) for r in features.apply(ws)] == [("user_spend", "registered")]
    assert features.list_views(ws)[0]["version"] == ws.definitions.get("feature_view", "user_spend").version
    ws.close()


def test_public_api_is_pinned() -> None:
    # the names themselves are pinned with every other door's in tests/test_public_api.py
    for name in features.__all__:
        assert getattr(features, name).__doc__, name
    for name in ("Entity", "Feature", "FeatureView", "RequestFeature"):
        assert getattr(st, name) is getattr(features, name) and name in st.__all__
