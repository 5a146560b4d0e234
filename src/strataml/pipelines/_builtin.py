"""Built-in steps for what strataml already does: ingest, materialise, train, export,
batch predict and drift check — thin wrappers over the layers' public functions.

Each knows what it reads and produces, so the pipeline orders them (training waits for
the ingest of its labels, an export for the training of its model) and caches them by
the versions they read: ``train_step("fraud")`` retrains only when its data or its
definition changed. Example::

    daily = st.Pipeline("daily", [
        ingest_step("transactions", "data/tx/*.csv"),
        materialize_step("user_spend"),
        train_step("fraud"),
        export_step("fraud"),
    ])
"""

from __future__ import annotations

import glob
import uuid
from pathlib import Path
from typing import Any

from strataml.errors import StrataError
from strataml.pipelines._pipeline import Step
from strataml.pipelines._task import StepContext


class DriftDetected(StrataError):
    """A drift check found drift and was told to fail on it."""


def _latest(workspace: Any, dataset: str) -> str | None:
    from strataml.data import latest_version

    found = latest_version(workspace, dataset)
    return found.ref if found is not None else None


def _view_material(workspace: Any, view_name: str) -> dict[str, Any]:
    from strataml.features import resolve_view

    view = resolve_view(workspace, view_name)
    source = _latest(workspace, view.source) if isinstance(view.source, str) else None
    return {"view": f"{view.name}@{view.version}", "source": source}


def _never_cached() -> dict[str, str]:
    return {"uncacheable": uuid.uuid4().hex}


# --- ingest ------------------------------------------------------------------------


def _source_files(workspace: Any, source: str) -> list[Path]:
    if "://" in source:
        return []
    pattern = workspace.resolve_url(source)
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


def _ingest_fingerprint(workspace: Any, config: dict[str, Any]) -> Any:
    from strataml.spine import sha256_file

    files = _source_files(workspace, config["source"])
    if not files:  # a URL or a query: its content is unknown until read
        return _never_cached()
    return [[str(p), sha256_file(p)] for p in files]


def _ingest(context: StepContext) -> dict[str, Any]:
    import strataml.data as data_layer

    cfg = context.config
    source = context.workspace.resolve_url(cfg["source"])
    report = data_layer.ingest(
        context.workspace, source, contract=cfg["contract"], dataset=cfg["dataset"]
    )
    return report.to_dict()


def ingest_step(
    contract: str,
    source: str,
    *,
    dataset: str | None = None,
    name: str | None = None,
    **options: Any,
) -> Step:
    """Ingest ``source`` (files, relative to the workspace, or a URL) under ``contract`` into
    ``dataset`` (default: the contract's name). Re-runs only when the files changed."""
    ds = dataset or contract
    return Step(
        _ingest,
        name=name or f"ingest_{ds}",
        produces=[f"dataset:{ds}"],
        config={"contract": contract, "source": source, "dataset": ds},
        fingerprint=_ingest_fingerprint,
        **options,
    )


# --- materialise -------------------------------------------------------------------


def _materialize_reads(workspace: Any, config: dict[str, Any]) -> list[str]:
    return [f"feature_view:{v}" for v in config["views"]]


def _materialize_fingerprint(workspace: Any, config: dict[str, Any]) -> Any:
    views = config["views"] or sorted(v.name for v in workspace.definitions.all("feature_view"))
    return {v: _view_material(workspace, v) for v in views}


def _materialize(context: StepContext) -> dict[str, Any]:
    import strataml.features as features_layer

    cfg = context.config
    return features_layer.materialize(context.workspace, cfg["views"] or None, cfg["incremental"])


def materialize_step(
    *views: str, incremental: bool = False, name: str | None = None, **options: Any
) -> Step:
    """Materialise feature ``views`` (default: every declared view) to the online store;
    re-runs when a view's definition or its source dataset has a new version."""
    return Step(
        _materialize,
        name=name or "materialize" + "".join(f"_{v}" for v in views),
        config={"views": list(views), "incremental": incremental},
        reads=_materialize_reads,
        fingerprint=_materialize_fingerprint,
        **options,
    )


# --- train -------------------------------------------------------------------------


def _model_definition(workspace: Any, model: str) -> Any:
    return workspace.definitions.get("model", model)


def _train_reads(workspace: Any, config: dict[str, Any]) -> list[str]:
    definition = _model_definition(workspace, config["model"])
    return [f"dataset:{definition.labels}", *(f"feature_view:{v}" for v in definition.features)]


def _train_fingerprint(workspace: Any, config: dict[str, Any]) -> Any:
    d = _model_definition(workspace, config["model"])
    return {
        "definition": [
            repr(d),
            repr(d.estimator),
            d.target,
            d.columns,
            d.metrics,
            repr(d.gate),
            repr(d.split),
            d.seed,
        ],
        "labels": _latest(workspace, d.labels),
        "views": {v: _view_material(workspace, v) for v in d.features},
    }


def _train(context: StepContext) -> dict[str, Any]:
    import strataml.models as models_layer

    cfg = context.config
    result = models_layer.train(
        context.workspace, cfg["model"], tune=cfg["tune"], promote=cfg["promote"], seed=cfg["seed"]
    )
    return result.to_dict()


def train_step(
    model: str,
    *,
    tune: int | None = None,
    promote: bool | None = None,
    seed: int | None = None,
    name: str | None = None,
    **options: Any,
) -> Step:
    """Train ``model`` (declared in definitions.py), gate it and register the version;
    re-runs when its labels, its feature views or its definition changed."""
    return Step(
        _train,
        name=name or f"train_{model}",
        produces=[f"model:{model}"],
        config={"model": model, "tune": tune, "promote": promote, "seed": seed},
        reads=_train_reads,
        fingerprint=_train_fingerprint,
        **options,
    )


# --- export, batch predict, drift --------------------------------------------------


def _model_version(workspace: Any, model: str, ref: str) -> Any:
    from strataml.models import get_model, resolve_version

    try:
        number = resolve_version(workspace, model, ref)
    except StrataError:
        return None
    return [
        v["sha256"] for v in get_model(workspace, model)["versions"] if int(v["version"]) == number
    ]


def _model_reads(workspace: Any, config: dict[str, Any]) -> list[str]:
    reads = [f"model:{config['model']}"]
    source = config.get("source")
    if source and not Path(workspace.root, source).exists() and not Path(source).exists():
        reads.append(f"dataset:{source.split('@')[0]}")
    return reads


def _export_fingerprint(workspace: Any, config: dict[str, Any]) -> Any:
    return _model_version(workspace, config["model"], config["ref"])


def _export(context: StepContext) -> dict[str, Any]:
    from strataml.models import export_model

    cfg = context.config
    return export_model(
        context.workspace, cfg["model"], cfg["ref"], format=cfg["format"], quantize=cfg["quantize"]
    )


def export_step(
    model: str,
    ref: str = "champion",
    *,
    format: str = "onnx",
    quantize: str | None = None,
    name: str | None = None,
    **options: Any,
) -> Step:
    """Export ``model@ref`` (ONNX by default), checked against the native model."""
    return Step(
        _export,
        name=name or f"export_{model}",
        config={"model": model, "ref": ref, "format": format, "quantize": quantize},
        reads=_model_reads,
        fingerprint=_export_fingerprint,
        **options,
    )


def _score_fingerprint(workspace: Any, config: dict[str, Any]) -> Any:
    source = config["source"]
    path = Path(workspace.root, source)
    if path.exists():
        return _never_cached()  # files outside the catalog may change without a new version
    from strataml.data import get_version

    return {
        "model": _model_version(workspace, config["model"], config["ref"]),
        "source": get_version(workspace, source).ref,
    }


def _score(context: StepContext) -> dict[str, Any]:
    from strataml.serving import score

    cfg = context.config
    root = Path(context.workspace.root)
    source = str(root / cfg["source"]) if (root / cfg["source"]).exists() else cfg["source"]
    output = Path(cfg["output"]) if Path(cfg["output"]).is_absolute() else root / cfg["output"]
    output.parent.mkdir(parents=True, exist_ok=True)
    return score(context.workspace, cfg["model"], source, output, ref=cfg["ref"])


def score_step(
    model: str,
    source: str,
    output: str,
    *,
    ref: str = "champion",
    name: str | None = None,
    **options: Any,
) -> Step:
    """Batch-predict ``source`` (a dataset reference or Parquet path) with ``model@ref`` into
    the Parquet file ``output`` (relative to the workspace)."""
    return Step(
        _score,
        name=name or f"score_{model}",
        config={"model": model, "source": source, "output": output, "ref": ref},
        reads=_model_reads,
        fingerprint=_score_fingerprint,
        **options,
    )


def _drift(context: StepContext) -> dict[str, Any]:
    import strataml.monitoring as monitoring_layer

    cfg = context.config
    report = monitoring_layer.drift(
        context.workspace, cfg["model"], since=cfg["since"], window=cfg["window"]
    )
    out = report.to_dict()
    if cfg["fail_on_drift"] and report.drifted:
        raise DriftDetected(
            f"{cfg['model']} drifted: {', '.join(report.drifted_features) or 'its predictions'}",
            hint="retrain it, or look at 'strata monitor drift " + cfg["model"] + "'",
        )
    return out


def drift_step(
    model: str,
    *,
    since: str | None = None,
    window: str | None = None,
    fail_on_drift: bool = False,
    name: str | None = None,
    **options: Any,
) -> Step:
    """Check ``model``'s live inputs and outputs for drift against its training reference;
    ``fail_on_drift=True`` fails the step (and the run) when drift is found. Never cached."""
    options.setdefault("cache", False)
    return Step(
        _drift,
        name=name or f"drift_{model}",
        config={"model": model, "since": since, "window": window, "fail_on_drift": fail_on_drift},
        reads=_model_reads,
        **options,
    )
