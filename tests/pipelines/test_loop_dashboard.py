"""The dashboard's loop pages: each loop run as a timeline of steps and decisions, and
the canary's figures against the champion's, escaped like every page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import strataml as st
from strataml.dashboard import standalone_app
from strataml.pipelines import Canary, Check, abort, advance, start_canary
from strataml.serving import create_key

from .loop_setup import build_template, copy_of, rows, serve


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("loopd") / "tpl")


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Iterator[st.Workspace]:
    w = copy_of(template, tmp_path / "ws")
    yield w
    w.close()


def test_loop_pages_show_the_timeline_and_canary_against_champion(ws: st.Workspace) -> None:
    spec = Canary(
        weight=0.5,
        watch="2s",
        interval="1s",
        bake="1h",
        promote_if=[Check("error_rate", min_requests=10)],
        rollback_if=[],
    )
    run = start_canary(ws, "churn", 2, spec)
    seen = serve(ws, rows(60, 12))
    advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=1))
    advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=2))
    abort(ws, run.id, reason="<script>alert('x')</script> paged at night")
    key = create_key(ws.catalog, ["read"])[1]
    auth = {"authorization": f"Bearer {key}"}
    with TestClient(standalone_app(ws), follow_redirects=False) as c:
        listing = c.get("/ui/loops", headers=auth)
        assert listing.status_code == 200
        assert f"/ui/loops/{run.id}" in listing.text and "rolled_back" in listing.text
        page = c.get(f"/ui/loops/{run.id}", headers=auth)
        assert page.status_code == 200
        text = page.text
        for step in ("canary started", "canary checked", "promoted", "rolled back"):
            assert step in text, step
        assert (
            "<script>alert" not in text
            and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; paged at night" in text
        )
        # the first round's figures for both versions, as counted from the prediction log
        assert f'<td class="num">{seen[2]}</td><td class="num">{seen[1]}</td>' in text
        chart = c.get(f"/ui/api/loops/{run.id}", headers=auth).json()
        assert [s["values"] for s in chart["requests"]["series"]] == [
            [seen[2], seen[2]],
            [seen[1], seen[1]],
        ]
        assert (
            len(chart["error_rate"]["x"]) == 2
            and chart["error_rate"]["series"][0]["label"] == "canary v2"
        )
        assert c.get("/ui/loops/not-a-loop", headers=auth).status_code == 404
        assert c.get("/ui/loops/" + "0" * 32, headers=auth).status_code == 404
        assert c.get("/ui/loops").status_code == 303  # no key: to the login page
