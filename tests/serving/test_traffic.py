"""Traffic: sticky canary, A/B split, shadow, and changes without restart or failed requests."""

from __future__ import annotations

import threading
from collections import Counter

from strataml.serving import Traffic, Variant, query_predictions, set_traffic
from strataml.serving._traffic import entity_bucket, route

from .conftest import bearer, instance, make_client


def test_canary_is_sticky_per_entity_and_near_its_weight() -> None:
    t = Traffic(model="fraud", canary=Variant(ref="challenger", weight=0.2), sticky_key=["user_id"])
    arms = {u: route(t, {"user_id": f"u{u}", "f0": 1.0})[1] for u in range(4000)}
    share = sum(a == "canary" for a in arms.values()) / len(arms)
    assert 0.17 < share < 0.23
    for u in range(0, 4000, 97):
        for noise in (0.0, 5.0):
            assert route(t, {"user_id": f"u{u}", "f0": noise})[1] == arms[u]
    assert entity_bucket({"user_id": "a"}, ["user_id"], "canary") == entity_bucket({"user_id": "a", "x": 1}, ["user_id"], "canary")


def test_ab_split_follows_weights() -> None:
    t = Traffic(model="fraud", ab=[Variant(ref="v1", weight=0.5), Variant(ref="v2", weight=0.5)], sticky_key=["user_id"])
    c = Counter(route(t, {"user_id": str(u)})[0] for u in range(4000))
    assert set(c) == {"v1", "v2"} and abs(c["v1"] - 2000) < 200


def test_canary_over_http_and_traffic_change_without_restart(client, keys, workspace) -> None:
    h = bearer(keys["fraud"])
    insts = [{**instance(i), "user_id": f"u{i}"} for i in range(60)]
    versions = {client.post("/v1/models/fraud/predict", json={"instances": [x]}, headers=h).json()["version"] for x in insts}
    assert versions == {1}
    r = client.patch("/v1/deployments/fraud", json={"canary": {"ref": "challenger", "weight": 0.5}, "sticky_key": ["user_id"], "reason": "try v2"}, headers=bearer(keys["admin"]))
    assert r.status_code == 200, r.text
    first = {x["user_id"]: client.post("/v1/models/fraud/predict", json={"instances": [x]}, headers=h).json()["version"] for x in insts}
    assert set(first.values()) == {1, 2}
    again = {x["user_id"]: client.post("/v1/models/fraud/predict", json={"instances": [x]}, headers=h).json()["version"] for x in insts}
    assert first == again
    # a change written by another process (the CLI's code path) is picked up on the next request
    set_traffic(workspace.catalog, "fraud", {"canary": None})
    assert {client.post("/v1/models/fraud/predict", json={"instances": [x]}, headers=h).json()["version"] for x in insts} == {1}
    from strataml.spine._events import list_events

    kinds = [e.kind for e in list_events(workspace.catalog, kind="deployment.")]
    assert kinds == ["deployment.traffic_changed", "deployment.traffic_changed"]


def test_invalid_traffic_is_422(client, keys) -> None:
    for body in ({"canary": {"ref": "x", "weight": 2}}, {"ab": [{"ref": "a", "weight": 0.7}, {"ref": "b", "weight": 0.7}]}, {"bogus": 1}, {"rate": -1}):
        r = client.patch("/v1/deployments/fraud", json=body, headers=bearer(keys["admin"]))
        assert r.status_code == 422, body


def test_shadow_is_mirrored_logged_and_discarded(workspace, models, keys) -> None:
    set_traffic(workspace.catalog, "fraud", {"shadow": "challenger"})
    with make_client(workspace, models) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance(1), instance(2)]}, headers=bearer(keys["fraud"]))
        assert r.status_code == 200 and r.json()["version"] == 1
        rid = r.json()["request_id"]
    rows = query_predictions(workspace.state_dir / "predictions", "fraud", limit=None)
    mine = [x for x in rows if x["request_id"] == rid]
    assert sorted((x["mode"], x["version"], x["instance"]) for x in mine) == [("live", 1, 0), ("live", 1, 1), ("shadow", 2, 0), ("shadow", 2, 1)]
    live = [x["output"] for x in mine if x["mode"] == "live"]
    assert live == r.json()["predictions"]


def test_alias_move_takes_effect_without_failed_requests(workspace, models, keys) -> None:
    h = bearer(keys["fraud"])
    statuses: list[int] = []
    versions: list[int] = []
    stop = threading.Event()
    with make_client(workspace, models) as c:

        def load() -> None:
            while not stop.is_set():
                r = c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=h)
                statuses.append(r.status_code)
                versions.append(r.json().get("version", -1))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        import time

        time.sleep(0.3)
        models.set_alias("fraud", "champion", 2)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert versions[0] == 1 and versions[-1] == 2
