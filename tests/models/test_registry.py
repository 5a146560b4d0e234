"""The registry: versions, aliases, rollback, and every alias move as an event."""

from __future__ import annotations

import pytest
from lightgbm import LGBMClassifier

import strataml as st
from strataml.errors import ConfigError, NotFound, StrataError
from strataml.models import get_model, list_models, load_model, resolve_version, rollback, set_alias
from strataml.spine._events import list_events


def _three_versions(ws: st.Workspace) -> None:
    for n in (10, 20, 30):
        m = st.Model("reg", labels="loans", target="defaulted", columns=["amount", "age"],
                     estimator=LGBMClassifier(n_estimators=n, n_jobs=1))
        assert st.train(ws, m, promote=True).version is not None


def test_aliases_rollback_and_events(loans_ws: st.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    _three_versions(loans_ws)
    d = get_model(loans_ws, "reg")
    assert [v["version"] for v in d["versions"]] == [1, 2, 3]
    assert d["aliases"] == {"champion": 3}
    assert all(len(v["sha256"]) == 64 and v["run"] and "roc_auc" in v["metrics"] for v in d["versions"])
    assert len({v["sha256"] for v in d["versions"]}) == 3
    monkeypatch.setenv("STRATA_ACTOR", "alice")
    assert rollback(loans_ws, "reg", reason="v3 misbehaves") == {"model": "reg", "alias": "champion", "from": 3, "to": 2}
    assert load_model(loans_ws, "reg").version == 2
    assert rollback(loans_ws, "reg")["to"] == 1
    with pytest.raises(StrataError, match="no previous version"):
        rollback(loans_ws, "reg")
    set_alias(loans_ws, "reg", "challenger", 3, reason="try again")
    set_alias(loans_ws, "reg", "champion", 3, reason="fixed upstream")
    assert rollback(loans_ws, "reg")["to"] == 1
    moves = [e for e in list_events(loans_ws.catalog, kind="model.alias.moved")]
    assert [(e.payload["alias"], e.payload["from"], e.payload["to"]) for e in moves] == [
        ("champion", None, 1), ("champion", 1, 2), ("champion", 2, 3),
        ("champion", 3, 2), ("champion", 2, 1), ("challenger", None, 3), ("champion", 1, 3), ("champion", 3, 1),
    ]
    rb = moves[3]
    assert rb.actor == "alice" and rb.payload["reason"] == "v3 misbehaves" and rb.payload["action"] == "rollback" and rb.ts
    hist = get_model(loans_ws, "reg")["alias_history"]
    assert hist[3]["actor"] == "alice" and hist[3]["reason"] == "v3 misbehaves"
    assert list_models(loans_ws) == [{"name": "reg", "latest": 3, "versions": [1, 2, 3], "aliases": {"challenger": 3, "champion": 1}}]


def test_resolution_by_number_and_alias_and_clear_errors(loans_ws: st.Workspace) -> None:
    _three_versions(loans_ws)
    assert resolve_version(loans_ws, "reg", 2) == 2
    assert resolve_version(loans_ws, "reg", "v2") == 2
    assert load_model(loans_ws, "reg", "1").version == 1
    with pytest.raises(NotFound, match="no version 9"):
        load_model(loans_ws, "reg", 9)
    with pytest.raises(NotFound, match="no alias 'staging'"):
        load_model(loans_ws, "reg", "staging")
    with pytest.raises(NotFound, match="no model named 'nope'"):
        get_model(loans_ws, "nope")
    with pytest.raises(NotFound, match="no version 7"):
        set_alias(loans_ws, "reg", "champion", 7)
    with pytest.raises(ConfigError, match="invalid alias"):
        set_alias(loans_ws, "reg", "bad alias!", 1)
