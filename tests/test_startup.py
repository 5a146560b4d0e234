"""Light commands start fast: they never import the heavy libraries behind the model code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

HEAVY = ("pandas", "torch", "onnx", "onnxruntime", "lightgbm", "xgboost", "sklearn")

# Runs the CLI in-process the way the ``strata`` script does, then reports the heavy
# top-level packages that ended up in sys.modules.
PROBE = """
import json, sys
from strataml.cli.main import main
sys.argv = ["strata", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
sys.stderr.write("HEAVY=" + json.dumps(heavy) + "\\n")
"""


def _heavy_imports(python: str, env: dict[str, str], cwd: Path, args: list[str]) -> list[str]:
    code = f"HEAVY = {json.dumps(list(HEAVY))!r}\n" + PROBE
    proc = subprocess.run([python, "-c", code, json.dumps(args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")), None)
    assert line is not None, proc.stderr
    return list(json.loads(line.removeprefix("HEAVY=")))


@pytest.mark.parametrize(
    "args",
    [["--help"], ["events"], ["datasets", "list"], ["monitor", "--help"], ["queue", "--help"], ["worker", "--help"]],
    ids=" ".join,
)
def test_light_commands_import_no_heavy_library(args: list[str], python: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    subprocess.run([python, "-m", "strataml.cli.main", "init", str(tmp_path / "ws")], env=cli_env, check=True, capture_output=True)
    assert _heavy_imports(python, cli_env, tmp_path / "ws", args) == []


def test_import_strataml_is_light(python: str, cli_env: dict[str, str]) -> None:
    code = "import sys, strataml; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([python, "-c", code], env=cli_env, capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out.replace("'", '"')))
    assert loaded.isdisjoint({*HEAVY, "sqlalchemy", "duckdb", "pyarrow", "numpy"})


def test_top_level_help_converts_no_command(python: str, cli_env: dict[str, str]) -> None:
    """``strata --help`` lists every command without converting their signatures (the slow part)."""
    code = (
        "import sys\n"
        "from strataml.cli.main import app, main\n"
        "import typer.main\n"
        "calls = []\n"
        "real = typer.main.get_params_from_function\n"
        "typer.main.get_params_from_function = lambda f: (calls.append(f.__name__), real(f))[1]\n"
        "sys.argv = ['strata', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('CONVERTED=' + ','.join(c for c in calls if c not in ('summary', '_root')) + '\\n')\n"
    )
    proc = subprocess.run([python, "-c", code], env=cli_env, capture_output=True, text=True, timeout=120)
    assert "Commands" in proc.stdout and "ingest" in proc.stdout and "monitor" in proc.stdout, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("CONVERTED="))
    assert line == "CONVERTED=", line
