"""The loop page in a real browser: Chromium (Playwright) against ``strata ui`` as its own
process draws the canary-against-champion charts, and a planted reason never runs."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from strataml.pipelines import Canary, Check, abort, advance, start_canary
from strataml.serving import create_key

from .loop_setup import build_template, copy_of, rows, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("STRATA_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[1] / ".output" / "dashboard"
REQUIRE = os.environ.get("STRATA_REQUIRE_SERVERS") == "1" or os.environ.get("CI") == "true"


def test_the_loop_page_draws_its_charts_and_runs_no_planted_script(tmp_path: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if sync_playwright is None or not CHROMIUM.exists():
        missing = "playwright or Chromium is missing (pip install 'strataml[dev]'; apt-get install -y chromium)"
        if REQUIRE:
            pytest.fail(missing)
        pytest.skip(missing)
    ws = copy_of(build_template(tmp_path / "tpl"), tmp_path / "ws")
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(
            weight=0.5,
            watch="3s",
            interval="1s",
            bake="1h",
            promote_if=[Check("error_rate", min_requests=10)],
            rollback_if=[],
        ),
    )
    serve(ws, rows(80, 21))
    for s in (1, 2, 3):
        advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=s))
    abort(ws, run.id, reason='<img src=x onerror="window.__xss=1">')
    key = create_key(ws.catalog, ["read"])[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "strataml", "ui", "--port", str(port), "--workspace", str(ws.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/ui/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "strata ui did not start"
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            context = browser.new_context(
                base_url=base,
                viewport={"width": 1280, "height": 900},
                extra_http_headers={"authorization": f"Bearer {key}"},
            )
            page = context.new_page()
            problems: list[str] = []
            page.on(
                "console",
                lambda m: (
                    problems.append(f"{m.text} {m.location}")
                    if m.type in ("error", "warning")
                    and not m.location.get("url", "").endswith(
                        "/favicon.ico"
                    )  # the browser's own ask
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            resp = page.goto(f"/ui/loops/{run.id}")
            assert resp is not None and resp.ok
            for chart in ("#chart-loop-errors", "#chart-loop-p99"):
                page.wait_for_selector(f"{chart} .uplot canvas", timeout=15_000)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__xss") is None and page.locator("main img").count() == 0
            assert problems == []
            text = page.inner_text("main")
            assert "rolled back" in text and "canary v2" in page.inner_text("#chart-loop-errors")
            OUTPUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUTPUT / "loop.png"), full_page=True)
            assert page.goto("/ui/loops").ok and run.id[:12] in page.inner_text("main")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
        ws.close()
