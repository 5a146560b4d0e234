"""The Open Inference Protocol through a client written elsewhere: Triton's HTTP client
(``tritonclient[http]``) against a real server, for every protocol route."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

import strataml as st
from strataml.serving import GatewayConfig, create_app, create_key
from strataml.serving._edge import EdgeProtocol

from .registry_setup import build

httpclient = pytest.importorskip("tritonclient.http")


def _serve(ws: st.Workspace, models: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    cfg = uvicorn.Config(create_app(ws, models, GatewayConfig(ratelimit_url="memory://", rate=None)), host="127.0.0.1", port=0, http=EdgeProtocol, log_level="error")
    srv = uvicorn.Server(cfg)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not (srv.started and srv.servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv, t, srv.servers[0].sockets[0].getsockname()[1]


@pytest.fixture
def triton(workspace: st.Workspace, models: Any) -> Iterator[Any]:
    srv, t, port = _serve(workspace, models)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    yield client
    client.close()
    srv.should_exit = True
    t.join(30)


def _inputs(x: np.ndarray, binary: bool) -> list[Any]:
    tensor = httpclient.InferInput("features", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x, binary_data=binary)
    return [tensor]


def test_health_and_metadata(triton: Any, keys: dict[str, str]) -> None:
    h = {"authorization": f"Bearer {keys['fraud']}"}
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("fraud", headers=h)
    assert not triton.is_model_ready("fraud")  # a key is needed
    meta = triton.get_server_metadata(headers=h)
    assert meta["name"] == "strataml" and "binary_tensor_data" in meta["extensions"]
    model = triton.get_model_metadata("fraud", headers=h)
    assert [i["name"] for i in model["inputs"]] == [f"f{i}" for i in range(10)] and model["versions"] == ["1"]


@pytest.mark.parametrize("binary", [False, True])
def test_infer_json_and_binary(triton: Any, keys: dict[str, str], client_rows: np.ndarray, binary: bool) -> None:
    h = {"authorization": f"Bearer {keys['fraud']}"}
    outputs = [httpclient.InferRequestedOutput("predictions", binary_data=binary)]
    res = triton.infer("fraud", _inputs(client_rows, binary), outputs=outputs, headers=h)
    got = res.as_numpy("predictions")
    assert got.shape == (3,) and np.all((got > 0) & (got < 1))
    default = triton.infer("fraud", _inputs(client_rows, True), headers=h)  # the client's defaults: binary both ways
    assert np.allclose(default.as_numpy("predictions"), got)


@pytest.fixture
def client_rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.normal(size=(3, 10)).round(4)


def test_metadata_advertises_what_a_request_takes(tmp_path: Path) -> None:
    ws = st.Workspace.init(tmp_path / "rws", example=False)
    build(ws)
    key = create_key(ws.catalog, ["predict:fraud"])[1]
    srv, t, port = _serve(ws, None)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        h = {"authorization": f"Bearer {key}"}
        meta = client.get_model_metadata("fraud", headers=h)
        inputs = {i["name"]: i["datatype"] for i in meta["inputs"]}
        assert inputs == {"user_id": "BYTES", "amount_now": "FP64"}, meta
        assert meta["parameters"]["looked_up_features"] and "user_id" not in meta["parameters"]["looked_up_features"]
        uid = httpclient.InferInput("user_id", [2], "BYTES")
        uid.set_data_from_numpy(np.array([b"u3", b"u17"], dtype=object))
        amount = httpclient.InferInput("amount_now", [2], "FP64")
        amount.set_data_from_numpy(np.array([12.5, 140.0]))
        res = client.infer("fraud", [uid, amount], headers=h)  # what the metadata says, in binary
        assert res.as_numpy("predictions").shape == (2,)
    finally:
        client.close()
        srv.should_exit = True
        t.join(30)
        ws.close()
