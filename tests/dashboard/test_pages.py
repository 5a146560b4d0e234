"""The dashboard in process: login and keys, security headers, escaping, and pages that
show what the catalog holds."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

import strataml as st
from strataml.dashboard import dashboard_mounts
from strataml.dashboard._observed import MonitoringUnavailable, monitoring
from strataml.data import list_datasets
from strataml.models import get_model, model_lineage
from strataml.serving import GatewayConfig, create_app, create_key, revoke_key

from .setup_ws import PAYLOADS, XSS_CATEGORY, XSS_IMG, XSS_REASON, XSS_SCRIPT

PAGES = ["/ui/", "/ui/datasets", "/ui/datasets/evil", "/ui/datasets/tx", "/ui/models", "/ui/models/fraud", "/ui/deployments",
         "/ui/deployments/fraud", "/ui/drift/fraud", "/ui/quality/fraud", "/ui/events", "/ui/lineage?request_id=req-003"]
APIS = ["/ui/api/datasets/evil", "/ui/api/models/fraud", "/ui/api/events"]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def login(c: TestClient, key: str, nxt: str = "") -> Any:
    return c.post("/ui/login", content=f"key={key}&next={nxt}", headers={"content-type": "application/x-www-form-urlencoded"})


def test_pages_need_a_read_key_or_a_session(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    keys = dash[1]["keys"]
    r = client.get("/ui/models/fraud")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/models/fraud"
    assert client.get("/ui/api/models/fraud").status_code == 401
    assert client.get("/ui/api/models/fraud", headers=bearer("sk_0000000000000000_" + "x" * 40)).status_code == 401
    denied = client.get("/ui/api/models/fraud", headers=bearer(keys["predict"]))
    assert denied.status_code == 403 and "'read' scope" in denied.json()["error"]["message"]
    for k in ("read", "admin"):
        assert client.get("/ui/api/models/fraud", headers=bearer(keys[k])).status_code == 200
        assert client.get("/ui/models/fraud", headers=bearer(keys[k])).status_code == 200

    assert login(client, "sk_0000000000000000_" + "y" * 40).status_code == 401
    wrong_scope = login(client, keys["predict"])
    assert wrong_scope.status_code == 403 and "lacks the &#39;read&#39; scope" in wrong_scope.text
    ok = login(client, keys["read"], "/ui/models/fraud")
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/models/fraud"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui/" in cookie
    value = re.match(r"strata_session=([^;]+)", cookie)
    assert value and keys["read"] not in cookie and keys["read"].split("_")[2] not in cookie  # the key itself never leaves
    assert client.get("/ui/models/fraud").status_code == 200  # the cookie is enough
    assert client.get("/ui/api/models/fraud").status_code == 200

    # a forged cookie (another expiry under the same MAC) is refused
    kid, exp, mac = value.group(1).split(".")
    forged = TestClient(client.app, follow_redirects=False, cookies={"strata_session": f"{kid}.{int(exp) + 999999}.{mac}"})
    assert forged.get("/ui/api/models/fraud").status_code == 401
    # never an open redirect after login
    assert login(client, keys["read"], "//evil.example/x").headers["location"] == "/ui/"
    assert login(client, keys["read"], "https://evil.example/").headers["location"] == "/ui/"
    # logging out drops the cookie
    out = client.post("/ui/logout")
    assert out.status_code == 303 and 'strata_session=""' in out.headers["set-cookie"]


def test_revoking_the_key_ends_its_sessions(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, _ = dash
    rec, key = create_key(ws.catalog, ["read"], "short-lived")
    assert login(client, key).status_code == 303
    assert client.get("/ui/api/events").status_code == 200
    revoke_key(ws.catalog, rec.id)
    r = client.get("/ui/api/events")
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/ui/login", "/ui/", "/ui/api/events", "/ui/static/common.js", "/ui/no-such-page"])
def test_every_answer_carries_a_strict_csp(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]], path: str) -> None:
    r = client.get(path, headers=bearer(dash[1]["keys"]["read"]))
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"


def test_no_page_has_inline_script_or_style(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    for path in [*PAGES, "/ui/login"]:
        page = client.get(path, headers=bearer(dash[1]["keys"]["read"])).text
        assert all(re.fullmatch(r'<script src="/ui/static/[\w.]+\.js">', tag) for tag in re.findall(r"<script[^>]*>", page)), path
        assert " style=" not in page and "<style" not in page and " on" not in re.sub(r"\s+", " ", "".join(re.findall(r"<[a-z][^>]*>", page))).replace(" one", "")


def test_hostile_names_are_escaped_everywhere(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    h = bearer(dash[1]["keys"]["read"])
    pages = {p: client.get(p, headers=h).text for p in PAGES}
    for path, page in pages.items():
        for payload in PAYLOADS:
            assert payload not in page, (path, payload)
        assert "<img" not in page, path
    # …and shown, escaped, where they belong
    assert html.escape(XSS_SCRIPT, quote=True) in pages["/ui/datasets/evil"].replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;.allowed" in pages["/ui/datasets/evil"]
    assert "&#34;&gt;&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;.min" in pages["/ui/datasets/evil"]
    assert "&#34;&gt;&lt;script&gt;window.__xss=5&lt;/script&gt;" in pages["/ui/models/fraud"]  # the alias move's reason
    assert "&#34;&gt;&lt;script&gt;window.__xss=5&lt;/script&gt;" in pages["/ui/events"]
    # JSON carries them as data, for scripts that set them as text
    chart = client.get("/ui/api/datasets/evil", headers=h).json()
    assert {s["label"] for s in chart["series"]} == {"rows", f"quarantined: {XSS_IMG}.min", f"quarantined: {XSS_SCRIPT}.allowed", "quarantined: small_amount"}
    assert XSS_CATEGORY and XSS_REASON  # planted by the fixture


def test_datasets_pages_show_the_catalog(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    page = client.get("/ui/datasets", headers=h).text
    for d in list_datasets(ws.catalog):
        assert f'href="/ui/datasets/{d["name"]}">{d["name"]}</a>' in page
        assert f'<td class="num">{d["rows"]}</td>' in page
    chart = client.get("/ui/api/datasets/evil", headers=h).json()
    evil = facts["evil"]
    assert chart["x"] == [1]
    by_label = {s["label"]: s["values"] for s in chart["series"]}
    assert by_label["rows"] == [evil["accepted"]]
    assert by_label["quarantined: small_amount"] == [evil["rejected_by_rule"]["small_amount"]]
    assert sum(v[0] for k, v in by_label.items() if k != "rows") == sum(evil["rejected_by_rule"].values())
    missing = client.get("/ui/datasets/ghost", headers=h)
    assert missing.status_code == 404 and "no dataset named &#39;ghost&#39;" in missing.text
    assert client.get("/ui/datasets/..%2F..%2Fetc", headers=h).status_code == 404


def test_models_pages_show_versions_aliases_traffic_and_metrics(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    m = get_model(ws, "fraud")
    page = client.get("/ui/models", headers=h).text
    assert "champion → v1" in page and f"challenger → v{facts['v2']}" in page
    assert '<meter min="0" max="1" value="0.25"></meter>' in page and "75.0%" in page and "25.0%" in page
    detail = client.get("/ui/models/fraud", headers=h).text
    for v in m["versions"]:
        assert f"<td>v{v['version']}</td>" in detail
        for k, val in v["metrics"].items():
            assert f"{val:.4g}" in detail, k
    chart = client.get("/ui/api/models/fraud", headers=h).json()
    assert chart["x"] == [v["version"] for v in m["versions"]]
    for s in chart["series"]:
        assert s["values"] == [v["metrics"].get(s["label"]) for v in m["versions"]]


def test_events_page_is_the_event_log(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    page = client.get("/ui/events", headers=bearer(facts["keys"]["read"])).text
    events = st.spine.list_events(ws.catalog, limit=300)
    assert len(re.findall(r"<tr class=\"[^\"]*\"><td>\d{4}-", page)) == len(events)
    assert "model.alias_moved" in page or "alias" in page
    chart = client.get("/ui/api/events", headers=bearer(facts["keys"]["read"])).json()
    assert set(chart["families"]) == {e.kind.split(".", 1)[0] for e in events}
    assert sum(1 for s in chart["series"] for v in s["values"] if v is not None) == len({(e.ts.timestamp(), e.kind.split(".")[0]) for e in events})


def test_lineage_of_one_prediction(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    h = bearer(facts["keys"]["read"])
    for rid, version in facts["request_ids"][:3]:
        page = client.get(f"/ui/lineage?request_id={rid}", headers=h).text
        lin = model_lineage(ws, "fraud", version)
        assert f'<a href="/ui/models/fraud">fraud</a> v{version}' in page
        assert lin["run"]["id"] in page and lin["sha256"][:16] in page
        assert lin["training_set"] in page
        for view in lin["feature_views"]:
            assert view in page
        for d in lin["datasets"]:
            assert f">{d['ref']}</a>" in page
        # and back to the raw rows the features were computed from: the entity's source rows up to the prediction
        chain = st.prediction_lineage(ws, rid)
        assert set(chain["raw_rows"]) == set(lin["feature_views"]) - {"request"}  # request features come with the request
        for raw in chain["raw_rows"].values():
            logged = chain["predictions"][0]
            assert raw["rows"] and all(all(r[k] == v for k, v in raw["key"].items()) for r in raw["rows"])
            assert all(str(r["ts"]) <= str(logged["ts"]).replace("T", " ") for r in raw["rows"])
            assert "Raw rows behind" in page and html.escape(str(raw["rows"][0]["ts"])) in page
    missing = client.get("/ui/lineage?request_id=nope", headers=h)
    assert missing.status_code == 404 and "no logged prediction has request id" in missing.text


def test_deployment_page_lists_recent_requests_with_their_lineage(client: TestClient, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    facts = dash[1]
    page = client.get("/ui/deployments/fraud", headers=bearer(facts["keys"]["read"])).text
    for rid, version in facts["request_ids"]:
        assert f'<a href="/ui/lineage?request_id={rid}">{rid}</a></td><td>v{version}</td>' in page
    assert "75.0%" in page and "25.0%" in page


def test_monitoring_pages_say_so_when_a_function_is_missing() -> None:
    with pytest.raises(MonitoringUnavailable, match="monitoring not available"):
        monitoring("no_such_report")


def test_strata_serve_mounts_the_dashboard_beside_the_gateway(dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    ws, facts = dash
    app = create_app(ws, None, GatewayConfig(ratelimit_url="memory://"), mounts=dashboard_mounts(ws))
    with TestClient(app, follow_redirects=False) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/ui/models").status_code == 303
        r = c.get("/ui/models", headers=bearer(facts["keys"]["read"]))
        assert r.status_code == 200 and 'href="/ui/models/fraud"' in r.text
        assert c.get("/ui/static/uPlot.iife.min.js").status_code == 200
        # the read scope does not reach the gateway's admin or predict routes
        assert c.get("/v1/deployments", headers=bearer(facts["keys"]["read"])).status_code == 403
        p = c.post("/v1/models/fraud/predict", json={"instances": [{"user_id": "u1", "amount_now": 3.0}]}, headers=bearer(facts["keys"]["read"]))
        assert p.status_code == 403
