"""The dashboard in a real browser: Debian's Chromium driven by Playwright against
``strata ui`` running as its own process. Logs in, opens every page, checks what it
shows against the catalog, checks that planted script never runs, and saves a
screenshot of each page under ``tests/.output/dashboard/``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import strataml as st
from strataml.data import list_datasets
from strataml.models import get_model, model_lineage

from .setup_ws import XSS_CATEGORY, XSS_IMG, XSS_REASON, XSS_SCRIPT

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # ~30 s: a Chromium and a server process

CHROMIUM = Path(os.environ.get("STRATA_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[1] / ".output" / "dashboard"
REQUIRE = os.environ.get("STRATA_REQUIRE_SERVERS") == "1" or os.environ.get("CI") == "true"


def _need_browser() -> Any:
    """Playwright's sync API, or a skip (a failure in CI) naming what is missing."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install 'strataml[dev]')"
    if missing is None and not CHROMIUM.exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set STRATA_CHROMIUM)"
    if missing:
        if REQUIRE:
            pytest.fail(missing + " (STRATA_REQUIRE_SERVERS=1)")
        pytest.skip(missing)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(dash: tuple[st.Workspace, dict[str, Any]]) -> Iterator[str]:
    """``strata ui`` serving the populated workspace, as its own process."""
    _need_browser()
    ws, _ = dash
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") or k == "STRATA_REQUIRE_SERVERS"}
    src = str(Path(__file__).resolve().parents[2] / "src")
    tests = str(Path(__file__).resolve().parents[1])  # definitions.py imports the shared test setup
    env["PYTHONPATH"] = os.pathsep.join([src, tests, env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "strataml", "ui", "--port", str(port), "--workspace", str(ws.root), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"strata ui exited: {proc.stdout.read().decode() if proc.stdout else ''}")
            try:
                if httpx.get(base + "/ui/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


# module scope: Playwright's sync API keeps an event loop running in this thread while it
# is open, and later tests call asyncio.run
@pytest.fixture(scope="module")
def browser_page(server: str) -> Iterator[Any]:
    """One logged-out Chromium page; console errors and page errors are collected on it."""
    sync_playwright = _need_browser()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
        page = context.new_page()
        page.problems = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _visit(page: Any, path: str, shot: str, charts: tuple[str, ...] = ()) -> str:
    """Open a page, wait for its charts, check that no script was planted, screenshot it; returns its text."""
    page.problems.clear()
    resp = page.goto(path)
    assert resp is not None and resp.ok, (path, resp and resp.status)
    for sel in charts:
        page.wait_for_selector(f"{sel} .uplot canvas", timeout=15_000)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__xss") is None, path
    assert page.locator("img").count() == 0, path
    assert page.problems == [], (path, page.problems)
    page.screenshot(path=str(OUTPUT / f"{shot}.png"), full_page=True)
    return str(page.inner_text("main"))


def test_login_then_every_page(browser_page: Any, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    page = browser_page
    ws, facts = dash
    page.goto("/ui/models/fraud")
    assert page.url.endswith("/ui/login?next=/ui/models/fraud")
    page.screenshot(path=str(OUTPUT / "login.png"))
    page.fill("#key", facts["keys"]["predict"])
    page.click("button[type=submit]")
    assert "lacks the 'read' scope" in page.inner_text("main")
    page.fill("#key", facts["keys"]["read"])
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/models/fraud")
    cookie = next(c for c in page.context.cookies() if c["name"] == "strata_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session

    text = _visit(page, "/ui/", "overview")
    assert f"{len(list_datasets(ws.catalog))}\ndatasets" in text.replace(" datasets", "\ndatasets")

    text = _visit(page, "/ui/datasets", "datasets")
    for d in list_datasets(ws.catalog):
        assert d["name"] in text

    text = _visit(page, "/ui/datasets/evil", "dataset-evil", ("#chart-dataset",))
    assert XSS_SCRIPT in text and XSS_IMG in text  # shown as text, never run
    legend = page.inner_text("#chart-dataset .u-legend")
    assert f"quarantined: {XSS_SCRIPT}.allowed" in legend and "quarantined: small_amount" in legend

    text = _visit(page, "/ui/models", "models")
    assert "champion → v1" in text and f"challenger → v{facts['v2']}" in text and "25.0%" in text

    text = _visit(page, "/ui/models/fraud", "model-fraud", ("#chart-model",))
    m = get_model(ws, "fraud")
    for v in m["versions"]:
        for val in v["metrics"].values():
            assert f"{val:.4g}" in text
    assert XSS_REASON in text

    text = _visit(page, "/ui/events", "events", ("#chart-events",))
    assert "dataset.version_created" in text and XSS_REASON in text

    text = _visit(page, "/ui/lineage", "lineage-form")
    rid, version = facts["request_ids"][0]
    page.fill("input[name=request_id]", rid)
    page.click("form.controls button")
    page.wait_for_url(f"**/ui/lineage?request_id={rid}")
    text = _visit(page, f"/ui/lineage?request_id={rid}", "lineage")
    lin = model_lineage(ws, "fraud", version)
    assert f"fraud v{version}" in text and lin["run"]["id"] in text and lin["training_set"] in text
    for d in lin["datasets"]:
        assert d["ref"] in text
    assert XSS_CATEGORY  # planted in the data; shown by the drift page's categories


def test_monitoring_pages(browser_page: Any, dash: tuple[st.Workspace, dict[str, Any]]) -> None:
    """Latency per version, drift with a clicked feature's distributions, quality; or, in a
    build without the monitoring layer, the plain statement that it is not available."""
    page = browser_page
    ws, facts = dash
    if not any(c["name"] == "strata_session" for c in page.context.cookies()):
        page.goto("/ui/login")
        page.fill("#key", facts["keys"]["read"])
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/")
    import strataml.monitoring as mon

    if not hasattr(mon, "slo"):
        assert "monitoring not available" in _visit(page, "/ui/deployments/fraud", "deployment-fraud")
    else:
        text = _visit(page, "/ui/deployments/fraud?window=1d", "deployment-fraud", ("#chart-rate", "#chart-errors", "#chart-latency"))
        versions = sorted({v for _, v in facts["request_ids"]})
        for v in versions:
            assert f"v{v}" in text
        legend = page.inner_text("#chart-latency .u-legend")
        assert all(f"v{v} p99" in legend for v in versions)

    report = mon.drift(ws, "fraud").to_dict()
    text = _visit(page, "/ui/drift/fraud", "drift-fraud", ("#chart-distribution",))
    names = [b.get_attribute("data-feature") for b in page.locator("button.feature").all()]
    assert set(names) == set(report["features"])
    assert page.get_attribute("#chart-distribution", "data-shown") == names[0]  # the worst first
    if len(names) > 1:
        page.click(f'button.feature[data-feature="{names[1]}"]')
        page.wait_for_function("n => document.getElementById('chart-distribution').dataset.shown === n", arg=names[1])
        assert names[1] in page.inner_text("#chart-distribution figcaption")
        assert "reference" in page.inner_text("#chart-distribution .u-legend") and "current" in page.inner_text("#chart-distribution .u-legend")
        page.screenshot(path=str(OUTPUT / "drift-fraud-clicked.png"), full_page=True)
    assert page.evaluate("window.__xss") is None and page.problems == []

    if not hasattr(mon, "quality"):
        assert "monitoring not available" in _visit(page, "/ui/quality/fraud", "quality-fraud")
    else:
        _visit(page, "/ui/quality/fraud?labels=fraud_outcomes&by=hour", "quality-fraud", ("#quality figure.chart",))

    if hasattr(mon, "list_alerts"):
        text = _visit(page, "/ui/events", "events", ("#chart-events",))
        assert "monitoring not available" not in text
