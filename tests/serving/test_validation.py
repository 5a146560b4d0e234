"""Bad input: 413 oversize, 400 invalid or deeply nested JSON, 404 unknown model, 422 wrong types."""

from __future__ import annotations

import time

from .conftest import FEATURES, bearer, instance, make_client


def test_oversized_body_is_413_fast(client, keys) -> None:
    big = b'{"instances": [' + b",".join([b'{"f0": 1.0}'] * 200_000) + b"]}"
    t0 = time.perf_counter()
    r = client.post("/v1/models/fraud/predict", content=big, headers={**bearer(keys["fraud"]), "content-type": "application/json"})
    assert r.status_code == 413 and "exceeds" in r.json()["error"]["message"]
    assert time.perf_counter() - t0 < 2.0

    def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(300):
            yield b" " * 8192

    r = client.post("/v1/models/fraud/predict", content=chunks(), headers=bearer(keys["fraud"]))
    assert r.status_code == 413


def test_deeply_nested_json_is_400(client, keys) -> None:
    for depth in (40, 5000, 200_000):
        body = "[" * depth + "]" * depth
        r = client.post("/v1/models/fraud/predict", content=body, headers=bearer(keys["fraud"]))
        assert r.status_code in (400, 413), depth
        if len(body) < 1 << 20:
            assert r.status_code == 400
    nested = {"instances": [instance()]}
    for _ in range(40):
        nested = {"a": nested}
    assert client.post("/v1/models/fraud/predict", json=nested, headers=bearer(keys["fraud"])).status_code == 400


def test_invalid_json_is_400(client, keys) -> None:
    for body in (b"{", b"", b"\xff\xfe", b'{"instances": [NaN]}'):
        r = client.post("/v1/models/fraud/predict", content=body, headers=bearer(keys["fraud"]))
        assert r.status_code == 400, body
        assert r.json()["error"]["message"]


def test_unknown_model_is_404(client, keys) -> None:
    for name in ("nope", "x" * 200, "..%2F..%2Fetc", "a b"):
        r = client.post(f"/v1/models/{name}/predict", json={"instances": [instance()]}, headers=bearer(keys["admin"]))
        assert r.status_code == 404, (name, r.status_code, r.text)
    r = client.post("/v2/models/nope/infer", json={"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": [1.0]}]}, headers=bearer(keys["admin"]))
    assert r.status_code == 404


def test_wrong_types_are_422_naming_the_field(client, keys) -> None:
    bad = instance()
    bad["f3"] = "high"
    r = client.post("/v1/models/fraud/predict", json={"instances": [instance(), bad]}, headers=bearer(keys["fraud"]))
    assert r.status_code == 422
    err = r.json()["error"]
    assert "'f3'" in err["message"] and "instance 1" in err["message"]
    assert err["details"][0] == {"instance": 1, "field": "f3", "problem": "expected float, got str"}
    missing = instance()
    del missing["f9"]
    r = client.post("/v1/models/fraud/predict", json={"instances": [missing]}, headers=bearer(keys["fraud"]))
    assert r.status_code == 422 and "'f9'" in r.json()["error"]["message"]
    for body in ({"instances": []}, {"instances": {}}, {"rows": []}, [1, 2], {"instances": [1]}, {"instances": [{"f0": [1]}]}, {"instances": [instance()], "x": 1}):
        r = client.post("/v1/models/fraud/predict", json=body, headers=bearer(keys["fraud"]))
        assert r.status_code == 422, body
    for body, field in (({"rows": [instance()]}, "rows"), ({"instances": [instance()], "x": 1}, "x")):  # a misspelt or extra field is named
        r = client.post("/v1/models/fraud/predict", json=body, headers=bearer(keys["fraud"]))
        assert r.json()["error"]["message"] == f"unknown field(s) in the body: {field}", body


def test_too_many_instances_is_422(workspace, models, keys) -> None:
    with make_client(workspace, models, max_instances=5) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance()] * 6}, headers=bearer(keys["fraud"]))
        assert r.status_code == 422 and "limit" in r.json()["error"]["message"]


def test_predict_response_shape(client, keys, boosters) -> None:
    import numpy as np

    insts = [instance(i) for i in range(5)]
    r = client.post("/v1/models/fraud/predict", json={"instances": insts}, headers={**bearer(keys["fraud"]), "x-request-id": "req-42"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["model"] == "fraud" and doc["version"] == 1 and doc["degraded"] is False and doc["request_id"] == "req-42"
    expected = boosters[0].predict(np.array([[i[f] for f in FEATURES] for i in insts]))
    assert np.allclose(doc["predictions"], expected)
    assert r.headers["x-request-id"] == "req-42"


def test_open_inference_protocol(client, keys, boosters) -> None:
    import numpy as np

    insts = [instance(i) for i in range(3)]
    expected = boosters[0].predict(np.array([[i[f] for f in FEATURES] for i in insts]))
    one_tensor = {"id": "abc", "inputs": [{"name": "x", "shape": [3, 10], "datatype": "FP64", "data": [[i[f] for f in FEATURES] for i in insts]}]}
    per_feature = {"inputs": [{"name": f, "shape": [3], "datatype": "FP64", "data": [i[f] for i in insts]} for f in FEATURES]}
    for body in (one_tensor, per_feature):
        r = client.post("/v2/models/fraud/infer", json=body, headers=bearer(keys["fraud"]))
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model_name"] == "fraud" and out["model_version"] == "1"
        assert out["outputs"][0]["shape"] == [3] and np.allclose(out["outputs"][0]["data"], expected)
    assert r.json()["id"] != "abc"
    bad = {"inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP64", "data": [1.0] * 19}]}
    assert client.post("/v2/models/fraud/infer", json=bad, headers=bearer(keys["fraud"])).status_code == 422
    meta = client.get("/v2/models/fraud", headers=bearer(keys["fraud"])).json()
    assert [i["name"] for i in meta["inputs"]] == FEATURES
