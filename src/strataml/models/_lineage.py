"""Lineage: what a run learned from and with what code, and the chain from a model
version back to the raw sources of its rows.

A training run records its dataset (or training-set) version, the versions of the
feature views it read, the code version (git commit and dirty flag of the workspace,
and the hash of ``definitions.py``), the versions of the libraries involved, and the
random seed. :func:`model_lineage` walks from a registered version through its run
to the dataset versions and their ingests.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from strataml._version import __version__
from strataml.spine import DEFINITIONS_FILE, Workspace

PACKAGES = ("strataml", "numpy", "pandas", "pyarrow", "duckdb", "scikit-learn", "lightgbm", "skops", "optuna", "xgboost", "torch", "safetensors")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the libraries a model depends on (plus Python)."""
    out = {"python": platform.python_version()}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "strataml":
                out[name] = __version__
    return out


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_version(root: Path) -> dict[str, Any]:
    """The git commit and dirty flag of the folder (None outside a repository) and the definitions hash."""
    commit = _git(root, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    definitions = root / DEFINITIONS_FILE
    digest = hashlib.sha256(definitions.read_bytes()).hexdigest() if definitions.is_file() else None
    return {"git_commit": commit, "git_dirty": dirty, "definitions_sha256": digest}


def model_lineage(ws: Workspace, name: str, ref: str | int = "champion") -> dict[str, Any]:
    """The chain behind a model version: run, training set, views, datasets and their sources."""
    from strataml.data import get_version
    from strataml.models._registry import get_model, resolve_version
    from strataml.models._tracking import get_run

    number = resolve_version(ws, name, ref)
    version = next(v for v in get_model(ws, name)["versions"] if v["version"] == number)
    lineage = dict(version["lineage"])
    run = get_run(ws, version["run"], history=False) if version["run"] else None
    datasets = []
    for ref_ in lineage.get("datasets", []):
        dv = get_version(ws, ref_)
        datasets.append({
            "ref": dv.ref, "sha256": dv.sha256, "rows": dv.rows, "source": dv.source,
            "contract": f"{dv.contract_name}@{dv.contract_version}" if dv.contract_name else None,
            "parent": f"v{dv.parent}" if dv.parent else None, "lineage": dv.lineage,
        })
    return {
        "model": name,
        "version": number,
        "sha256": version["sha256"],
        "run": None if run is None else {"id": run["id"], "status": run["status"], "parent": run["parent"], "started_at": run["started_at"]},
        "training_set": lineage.get("training_set"),
        "feature_views": lineage.get("views", {}),
        "datasets": datasets,
        "code": lineage.get("code", {}),
        "packages": lineage.get("packages", {}),
        "seed": lineage.get("seed"),
    }
