"""``strata keys create --scope read`` and ``strata serve`` with the dashboard at /ui, in
subprocesses; and the wheel carries every script, stylesheet and template."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest

import strataml as st

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "strataml" / "dashboard" / "static"
TEMPLATES = ROOT / "src" / "strataml" / "dashboard" / "templates"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_templates_load_nothing_from_elsewhere() -> None:
    for t in TEMPLATES.glob("*.html"):
        text = t.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, t.name
        for ref in re.findall(r'(?:src|href)="\{\{ base \}\}/static/([^"]+)"', text):
            assert (STATIC / ref).is_file(), (t.name, ref)
    assert (STATIC / "uPlot.LICENSE").read_text().startswith("The MIT License")


@pytest.mark.slow
def test_serve_mounts_the_dashboard_and_keys_take_the_read_scope(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    ws = st.Workspace.init(tmp_path / "cws", example=False)
    root = ws.root
    ws.close()
    out = subprocess.run([python, "-m", "strataml", "keys", "create", "--scope", "read", "-w", str(root), "--json"],
                         env=cli_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)
    assert key["scopes"] == ["read"]
    port = _port()
    proc = subprocess.Popen([python, "-m", "strataml", "serve", "--port", str(port), "-w", str(root), "--log-level", "warning"],
                            env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        r = httpx.get(base + "/ui/datasets", headers={"authorization": f"Bearer {key['key']}"})
        assert r.status_code == 200 and "no datasets yet" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert httpx.get(base + "/ui/datasets").status_code == 303
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_the_wheel_ships_the_dashboard(tmp_path: Path, python: str) -> None:
    out = subprocess.run([python, "-m", "pip", "wheel", str(ROOT), "-w", str(tmp_path), "--no-deps", "-q"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("strataml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in (STATIC, TEMPLATES):
        for f in folder.iterdir():
            assert f"strataml/dashboard/{folder.name}/{f.name}" in names
