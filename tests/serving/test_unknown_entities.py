"""An entity the online store does not know, and a request that sets a stored feature."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import strataml as st
from strataml.serving import create_key, set_traffic

from .conftest import bearer, make_client
from .registry_setup import T_END, build

KNOWN = {"user_id": "u3", "amount_now": 12.5}
UNKNOWN = {"user_id": "nobody", "amount_now": 80.0}
STORED = ["spend_7d", "tx_count_7d"]


@pytest.fixture(scope="module")
def known_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[st.Workspace]:
    """The registry model, its view materialised as of the data's end (every user known)."""
    from strataml.features import materialize

    ws = st.Workspace.init(Path(tmp_path_factory.mktemp("unknown")) / "rws", example=False)
    build(ws)
    materialize(ws, ["user_spend"], as_of=T_END)
    yield ws
    ws.close()


def _predict(ws: st.Workspace, instances: list[dict], **traffic: object) -> tuple[int, dict]:
    set_traffic(ws.catalog, "fraud", {"unknown_entity": "degrade", **traffic})
    key = create_key(ws.catalog, ["predict:fraud"])[1]
    with make_client(ws, None, preload=("fraud",)) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": instances}, headers=bearer(key))
        return r.status_code, r.json()


def test_known_entities_answer_as_usual(known_ws) -> None:
    status, doc = _predict(known_ws, [KNOWN])
    assert status == 200 and doc["degraded"] is False and "missing_features" not in doc


def test_one_known_entity_is_completed_as_within_a_batch(known_ws) -> None:
    """One known entity of a model with one view of stored features (and one of request
    features) takes the lookup's shorter path: the same row, missing features and
    refusal as the same instance within a batch."""
    from strataml.serving import InputError
    from strataml.serving._lookup import FeatureLookup
    from strataml.serving._servable import FeatureSpec, Servable, attach_views

    s = attach_views(known_ws, Servable("one_view", 1, tuple(FeatureSpec(f, "float") for f in [*STORED, "amount_log"]), "binary",
                                        lambda rows: [0.5] * len(rows), views=("user_spend", "request")))
    lookup = FeatureLookup(known_ws)
    instances = [KNOWN, UNKNOWN, {"user_id": "u1", "amount_now": 3.0}]
    in_batch: dict[int, list[str]] = {}
    batch = lookup(s, instances, in_batch)
    alone = [(lookup(s, [inst], missing := {}), missing) for inst in instances]
    assert [rows[0] for rows, _ in alone] == batch and batch[0]["spend_7d"] is not None and batch[2]["amount_log"] > 0
    assert [missing for _, missing in alone] == [{}, {0: STORED}, {}] and in_batch == {1: STORED}
    for refused in ([{**KNOWN, "spend_7d": 1.0}], [instances[2], {**KNOWN, "spend_7d": 1.0}]):
        with pytest.raises(InputError, match=f"instance {len(refused) - 1} .* sets 'spend_7d', which the online store provides"):
            lookup(s, refused)


def test_a_failing_canary_is_answered_and_logged_as_its_champion_would_be(known_ws) -> None:
    """The champion answering for a failing canary logs the instance completed with its
    stored features, as it does for its own requests (drift reads them)."""
    import dataclasses

    from strataml.serving import InMemoryModels, RegistryModels, query_predictions

    champion = RegistryModels(known_ws).get("fraud", "champion")

    def broken(rows: list[dict]) -> list[float]:
        raise RuntimeError("the canary's model fails")

    models = InMemoryModels()
    models.add(champion, ["champion"])
    models.add(dataclasses.replace(champion, version=champion.version + 1, predict_rows=broken, predict_table=None))
    set_traffic(known_ws.catalog, "fraud", {"unknown_entity": "degrade", "canary": {"ref": f"v{champion.version + 1}", "weight": 1.0}})
    key = create_key(known_ws.catalog, ["predict:fraud"])[1]
    try:
        with make_client(known_ws, models) as c:
            doc = c.post("/v1/models/fraud/predict", json={"instances": [KNOWN]}, headers=bearer(key)).json()
    finally:
        set_traffic(known_ws.catalog, "fraud", {"canary": None})
    assert doc["version"] == champion.version and doc["degraded"] is False, doc
    (logged,) = [r for r in query_predictions(known_ws.state_dir / "predictions", "fraud", limit=None) if r["request_id"] == doc["request_id"]]
    assert logged["version"] == champion.version and logged["features"]["spend_7d"] is not None


@pytest.mark.parametrize("batch", [False, True])
def test_unknown_entity_is_answered_degraded_naming_its_missing_features(known_ws, batch) -> None:
    instances = [KNOWN, UNKNOWN] if batch else [UNKNOWN]
    status, doc = _predict(known_ws, instances)
    assert status == 200 and doc["degraded"] is True and len(doc["predictions"]) == len(instances)
    assert doc["missing_features"] == [{"instance": len(instances) - 1, "features": STORED}]


def test_unknown_entity_answered_plainly_when_the_deployment_says_so(known_ws) -> None:
    status, doc = _predict(known_ws, [UNKNOWN], unknown_entity="answer")
    assert status == 200 and doc["degraded"] is False
    assert doc["missing_features"] == [{"instance": 0, "features": STORED}]


def test_unknown_entity_refused_when_the_deployment_says_so(known_ws) -> None:
    status, doc = _predict(known_ws, [KNOWN, UNKNOWN], unknown_entity="refuse")
    assert status == 422
    err = doc["error"]
    assert "instance 1" in err["message"] and "nobody" in err["message"] and "spend_7d" in err["message"]
    assert err["details"][0]["problem"] == "unknown entity"
    logged = st.Workspace.open(known_ws.root)
    from strataml.serving import query_predictions

    rows = query_predictions(logged.state_dir / "predictions", "fraud", limit=None)
    assert rows and not [r for r in rows if r["request_id"] == doc["request_id"]]  # a refused request is not logged as answered


def test_a_request_may_not_set_a_stored_feature(known_ws) -> None:
    for instances, position in (([{**KNOWN, "spend_7d": 1e9}], 0), ([KNOWN, {**UNKNOWN, "tx_count_7d": 3}], 1)):
        status, doc = _predict(known_ws, instances)
        assert status == 422, doc
        err = doc["error"]
        assert f"instance {position}" in err["message"] and "online store provides" in err["message"]
        assert err["details"][0]["problem"] == "stored feature set by the request"


def test_unknown_entity_setting_is_validated(known_ws) -> None:
    from strataml.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown_entity"):
        set_traffic(known_ws.catalog, "fraud", {"unknown_entity": "ignore"})


def test_openapi_documents_missing_features() -> None:
    from strataml.serving._openapi import openapi_document

    schemas = openapi_document()["components"]["schemas"]
    assert "missing_features" in schemas["PredictResponse"]["properties"]


def test_v2_infer_names_missing_features_as_v1_predict_does(known_ws) -> None:
    set_traffic(known_ws.catalog, "fraud", {"unknown_entity": "degrade"})
    key = create_key(known_ws.catalog, ["predict:fraud"])[1]
    inputs = [
        {"name": "user_id", "shape": [2], "datatype": "BYTES", "data": [KNOWN["user_id"], UNKNOWN["user_id"]]},
        {"name": "amount_now", "shape": [2], "datatype": "FP64", "data": [KNOWN["amount_now"], UNKNOWN["amount_now"]]},
    ]
    with make_client(known_ws, None, preload=("fraud",)) as c:
        r = c.post("/v2/models/fraud/infer", json={"inputs": inputs}, headers=bearer(key))
        v1 = c.post("/v1/models/fraud/predict", json={"instances": [KNOWN, UNKNOWN]}, headers=bearer(key)).json()
    assert r.status_code == 200, r.text
    params = r.json()["parameters"]
    assert params["degraded"] is True
    assert params["missing_features"] == v1["missing_features"] == [{"instance": 1, "features": STORED}]
    assert r.json()["outputs"][0]["data"] == v1["predictions"]


def _answer(r) -> tuple[int, dict]:
    doc = r.json()
    doc.pop("request_id", None)
    return r.status_code, doc


@pytest.mark.parametrize("how", ["mount", "root_path"])
def test_predict_answers_alike_under_a_root_path(known_ws, how: str) -> None:
    """The app under ``/api`` (a Starlette Mount, or a proxy's root path as uvicorn passes
    it) answers predict as it does at the root: values, missing features, errors, 405."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from strataml.serving import GatewayConfig, create_app

    set_traffic(known_ws.catalog, "fraud", {"unknown_entity": "degrade"})
    key = create_key(known_ws.catalog, ["predict:fraud"])[1]
    bodies = [{"instances": [KNOWN, UNKNOWN]}, {"instances": [{"user_id": 7, "amount_now": 1.0}]}, {"instances": [{**KNOWN, "spend_7d": 1.0}]}]
    with make_client(known_ws, None, preload=("fraud",)) as c:
        expected = [_answer(c.post("/v1/models/fraud/predict", json=b, headers=bearer(key))) for b in bodies]
    assert [s for s, _ in expected] == [200, 422, 422]
    assert expected[0][1]["missing_features"] == [{"instance": 1, "features": STORED}]

    app = create_app(known_ws, None, GatewayConfig(ratelimit_url="memory://", preload=("fraud",)))
    if how == "mount":
        @asynccontextmanager
        async def lifespan(outer: Starlette):  # type: ignore[no-untyped-def]
            async with app.router.lifespan_context(app):
                yield

        client = TestClient(Starlette(routes=[Mount("/api", app=app)], lifespan=lifespan), raise_server_exceptions=False)
    else:
        client = TestClient(app, root_path="/api", raise_server_exceptions=False)
    with client as c:
        got = [_answer(c.post("/api/v1/models/fraud/predict", json=b, headers=bearer(key))) for b in bodies]
        assert c.get("/api/v1/models/fraud/predict", headers=bearer(key)).status_code == 405
    assert got == expected
