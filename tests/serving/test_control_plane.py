"""The control plane: traffic checked before it is recorded, deployments deleted,
integrity failures answered without paths, and what public answers reveal."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import strataml as st
from strataml.errors import ConfigError, NotFound
from strataml.serving import create_key, from_lightgbm, get_traffic, set_traffic
from strataml.serving._traffic import check_traffic
from strataml.spine._events import list_events

from .conftest import bearer, instance, make_client
from .registry_setup import build, train_again

INST = {"user_id": "u3", "amount_now": 12.5}


@pytest.fixture
def reg_ws(tmp_path: Path) -> Iterator[st.Workspace]:
    ws = st.Workspace.init(tmp_path / "rws", example=False)
    build(ws)
    yield ws
    ws.close()


def _tamper(ws: st.Workspace, version: int) -> Path:
    sha = st.models.get_model(ws, "fraud")["versions"][version - 1]["sha256"]
    path = Path(ws.artifacts.uri(sha))
    path.write_bytes(path.read_bytes() + b"tampered")
    return path


def _cli(python: str, env: dict[str, str], ws: st.Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "strataml", *args, "-w", str(ws.root)], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # several whole CLI processes
def test_cli_refuses_traffic_that_cannot_be_served_and_deletes(reg_ws: st.Workspace, python: str, cli_env: dict[str, str]) -> None:
    for args, words in (
        (("deploy", "traffic", "fraud", "--champion", "42"), "'42' does not resolve"),
        (("deploy", "traffic", "frad", "--rate", "5"), "no model named 'frad'"),
        (("deploy", "traffic", "fraud", "--canary", "v99:0.5"), "canary 'v99'"),
        (("deploy", "traffic", "fraud", "--runtime", "onnx"), "no onnx export"),
    ):
        out = _cli(python, cli_env, reg_ws, *args)
        assert out.returncode != 0 and words in out.stdout + out.stderr, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
    assert get_traffic(reg_ws.catalog, "fraud") is None and get_traffic(reg_ws.catalog, "frad") is None
    ok = _cli(python, cli_env, reg_ws, "deploy", "traffic", "fraud", "--rate", "5", "--json")
    assert ok.returncode == 0, ok.stderr
    gone = _cli(python, cli_env, reg_ws, "deploy", "delete", "fraud", "--reason", "done", "--json")
    assert gone.returncode == 0 and json.loads(gone.stdout)["deleted"] is True, gone.stderr
    assert get_traffic(reg_ws.catalog, "fraud") is None
    assert list_events(reg_ws.catalog, kind="deployment.deleted")
    again = _cli(python, cli_env, reg_ws, "deploy", "delete", "fraud")
    assert again.returncode != 0 and "no deployment named 'fraud'" in again.stdout + again.stderr


def test_http_refuses_traffic_that_cannot_be_served_and_deletes(workspace: st.Workspace, models, keys: dict[str, str]) -> None:
    with make_client(workspace, models) as c:
        adm = bearer(keys["admin"])
        for method, name, body, words in (
            ("PUT", "fraud", {"champion": "v42"}, "champion 'v42' does not resolve"),

            ("PATCH", "fraud", {"canary": {"ref": "v99", "weight": 0.5}}, "canary 'v99'"),
            ("PATCH", "fraud", {"canary": {"ref": "challenger", "weight": 0.6}, "ab": [{"ref": "champion", "weight": 0.6}]}, "more than 1"),
        ):
            r = c.request(method, f"/v1/deployments/{name}", json=body, headers=adm)
            assert r.status_code == 422 and words in r.json()["error"]["message"], (name, body, r.text)
        r = c.patch("/v1/deployments/nosuch", json={"rate": 5}, headers=adm)
        assert r.status_code == 404 and "no model named 'nosuch'" in r.json()["error"]["message"]
        assert c.get("/v1/deployments", headers=adm).json()["deployments"] == {}
        assert c.patch("/v1/deployments/fraud", json={"canary": {"ref": "challenger", "weight": 0.5}}, headers=adm).status_code == 200
        changed = list_events(workspace.catalog, kind="deployment.traffic_changed")[-1]
        assert changed.actor.startswith("key:") and changed.actor != "key:-"  # the admin key that made the change
        r = c.delete("/v1/deployments/fraud", headers=adm)
        assert r.status_code == 200 and r.json()["deleted"] is True
        assert c.get("/v1/deployments", headers=adm).json()["deployments"] == {}
        assert c.delete("/v1/deployments/fraud", headers=adm).status_code == 404
        assert c.delete("/v1/deployments/fraud", headers=bearer(keys["fraud"])).status_code == 403


def test_an_unresolvable_champion_serves_the_last_good_traffic(workspace: st.Workspace, models, keys: dict[str, str]) -> None:
    with make_client(workspace, models) as c:
        set_traffic(workspace.catalog, "fraud", {"champion": "challenger"})
        first = c.post("/v1/models/fraud/predict", json={"instances": [instance(1)]}, headers=bearer(keys["fraud"]))
        assert first.status_code == 200 and first.json()["version"] == 2
        set_traffic(workspace.catalog, "fraud", {"champion": "v42"})  # the registry changed under the gateway
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance(1)]}, headers=bearer(keys["fraud"]))
        assert r.status_code == 200 and r.json()["version"] == 2, r.text


def test_an_unresolvable_champion_falls_back_to_the_champion_alias(workspace: st.Workspace, models, keys: dict[str, str]) -> None:
    set_traffic(workspace.catalog, "fraud", {"champion": "v42"})
    with make_client(workspace, models) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance(1)]}, headers=bearer(keys["fraud"]))
        assert r.status_code == 200 and r.json()["version"] == 1, r.text


def test_an_unresolvable_champion_without_good_traffic_uses_the_fallback_chain(workspace: st.Workspace, models, boosters) -> None:
    models.add(from_lightgbm("solo", 1, boosters[0]))  # no alias: nothing earlier to serve
    key = create_key(workspace.catalog, ["predict:solo"])[1]
    set_traffic(workspace.catalog, "solo", {"champion": "v42"})
    with make_client(workspace, models) as c:
        r = c.post("/v1/models/solo/predict", json={"instances": [instance(1)]}, headers=bearer(key))
        assert r.status_code == 503 and r.json()["error"]["type"] == "PredictionFailed"
        set_traffic(workspace.catalog, "solo", {"default": 0.25})
        r = c.post("/v1/models/solo/predict", json={"instances": [instance(1)]}, headers=bearer(key))
        assert r.status_code == 200 and r.json()["predictions"] == [0.25] and r.json()["degraded"] is True, r.text


def test_a_tampered_model_is_a_pathless_server_error_with_fallback(reg_ws: st.Workspace) -> None:
    v2 = train_again(reg_ws, 30)
    st.models.set_alias(reg_ws, "fraud", "champion", v2)
    path = _tamper(reg_ws, v2)
    key = create_key(reg_ws.catalog, ["predict:fraud"])[1]
    admin = create_key(reg_ws.catalog, ["admin"])[1]
    with make_client(reg_ws, None) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": [INST]}, headers=bearer(key))
        assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["fallback"] == "previous_champion", r.text
        meta = c.get("/v2/models/fraud", headers=bearer(key))
        assert meta.status_code == 503 and str(path) not in meta.text and str(reg_ws.root) not in meta.text
        public = c.get("/readyz")
        assert public.status_code == 503 and set(public.json()) == {"status", "error", "request_id"}
        detail = c.get("/readyz", headers=bearer(admin)).json()
        assert "integrity" in detail["checks"]["model:fraud@champion"] and str(reg_ws.root) not in json.dumps(detail)


def test_a_tampered_model_without_fallback_answers_503_without_a_path(reg_ws: st.Workspace) -> None:
    path = _tamper(reg_ws, 1)
    key = create_key(reg_ws.catalog, ["predict:fraud"])[1]
    with make_client(reg_ws, None) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": [INST]}, headers=bearer(key))
        assert r.status_code == 503 and "integrity" in r.text and str(path) not in r.text and str(reg_ws.root) not in r.text


def test_serve_with_a_tampered_model_is_a_clear_error(reg_ws: st.Workspace, python: str, cli_env: dict[str, str]) -> None:
    _tamper(reg_ws, 1)
    out = _cli(python, cli_env, reg_ws, "serve", "--port", "1", "-m", "fraud")
    assert out.returncode != 0 and "cannot serve model fraud@champion" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_a_404_does_not_name_other_models(reg_ws: st.Workspace) -> None:
    other = create_key(reg_ws.catalog, ["predict:other"])[1]
    with make_client(reg_ws, None) as c:
        r = c.post("/v1/models/other/predict", json={"instances": [INST]}, headers=bearer(other))
        assert r.status_code == 404 and "fraud" not in r.text
        assert c.get("/v2/models/other", headers=bearer(other)).status_code == 404


def test_public_probes_say_ready_and_nothing_more(workspace: st.Workspace, models, keys: dict[str, str]) -> None:
    with make_client(workspace, models, preload=("fraud",)) as c:
        assert c.get("/readyz").json() == {"status": "ready"}
        assert c.get("/readyz", headers=bearer(keys["fraud"])).json() == {"status": "ready"}
        assert c.get("/readyz", headers=bearer(keys["admin"])).json()["checks"]["model:fraud"] == "ok"
        assert c.get("/v2/health/ready").json() == {"ready": True}


def test_405_names_the_allowed_methods(client, keys: dict[str, str]) -> None:
    r = client.delete("/healthz")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    r = client.post("/v1/deployments/fraud", headers=bearer(keys["admin"]))
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "PUT", "PATCH", "DELETE"}


def test_traffic_check_without_a_registry_resolver(workspace: st.Workspace) -> None:
    def none(name: str, ref: str) -> int:
        raise NotFound(f"no {name}@{ref}")

    with pytest.raises(ConfigError, match="does not resolve"):
        set_traffic(workspace.catalog, "fraud", {"rate": 1.0}, check=lambda t: check_traffic(t, none))
    assert get_traffic(workspace.catalog, "fraud") is None
