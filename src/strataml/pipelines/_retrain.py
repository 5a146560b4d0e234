"""``st.Retrain``: the closed loop as a built-in pipeline.

A run ingests what is new, materialises the model's feature views, trains a challenger
(gated against the champion on the same held-out rows, registered when it passes),
records the gate's verdict, and deploys a passing challenger as a canary. From there
the canary analysis (:mod:`strataml.pipelines._loop`) is advanced by the scheduler's
ticks — it never holds a worker for the watch — until the challenger is promoted or
rolled back. Every step is a pipeline step with its own record; every decision is an
event with its reasons and figures.

The steps are module-level functions configured by the run's parameters, so a worker
process finds them whether the pipeline was declared in ``definitions.py`` or built in
Python.
"""

from __future__ import annotations

import dataclasses
import glob
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from strataml.errors import ConfigError
from strataml.pipelines._canary import Canary
from strataml.pipelines._pipeline import Pipeline, step
from strataml.pipelines._task import StepContext
from strataml.spine import append_event, check_name, parse_duration


@step(name="ingest", cache=False)
def ingest_new(sources: list[dict[str, Any]], labels: str, context: StepContext) -> dict[str, Any]:
    """Ingest each declared source (unchanged sources add nothing); report the labels' latest version."""
    import strataml.data as data  # ingest() shares a name with its module

    ws = context.workspace
    reports: list[dict[str, Any]] = []
    for s in sources:
        path = ws.resolve_url(str(s["path"]))  # relative to the workspace, like definitions.py
        if "://" not in path and any(c in path for c in "*?[") and not glob.glob(path):
            reports.append({"source": path, "status": "nothing new"})
            continue
        r = data.ingest(ws, path, contract=str(s["contract"]), dataset=s.get("dataset"))
        reports.append(
            {
                "dataset": r.dataset,
                "version": r.version,
                "status": r.status,
                "accepted": r.accepted,
                "rejected": r.rejected,
            }
        )
        context.log(
            f"ingested {s['path']} into {r.dataset}: {r.status} ({r.accepted} rows accepted)"
        )
    latest = data.get_version(ws, labels)
    return {"ingested": reports, "labels": latest.ref}


@step(name="materialize", cache=False)
def materialize_features(
    model: str, ingest: dict[str, Any], context: StepContext
) -> dict[str, Any]:
    """Write the latest values of the model's feature views that read a source."""
    ws = context.workspace
    definition = ws.definitions.get("model", model)
    views = [
        v
        for v in definition.features
        if getattr(ws.definitions.get("feature_view", v), "source", None)
    ]
    if not views:
        return {"views": [], "labels": ingest["labels"]}
    import strataml.features as features  # materialize() shares a name with its module

    report = features.materialize(ws, views)
    context.log(f"materialised {', '.join(views)}")
    return {
        "views": views,
        "labels": ingest["labels"],
        "entities": {r.get("view"): r.get("entities") for r in report.get("views", [])},
    }


@step(name="train", cache=False)
def train_challenger(
    model: str, materialize: dict[str, Any], context: StepContext
) -> dict[str, Any]:
    """Train a challenger; the models layer gates it against the champion on the same
    held-out rows and registers it (alias ``challenger``) only when it passes."""
    import strataml.models as models  # train() shares a name with its module

    ws = context.workspace
    result = models.train(ws, model, promote=False)
    if result.version is not None:
        from strataml.monitoring import profile

        profile(ws, f"{model}@v{result.version}")  # its reference, for drift and estimated quality
    out = result.to_dict()
    out["labels"] = materialize.get("labels")
    return out


@step(name="gate", cache=False)
def gate_challenger(model: str, train: dict[str, Any], context: StepContext) -> dict[str, Any]:
    """Record the gate's verdict with the figures it compared (an event either way)."""
    ws = context.workspace
    gate = dict(train.get("gate") or {})
    champion = train.get("champion") or {}
    reasons = [str(r) for r in gate.get("reasons") or []]
    verdict: dict[str, Any] = {
        "passed": bool(gate.get("passed")),
        "version": train.get("version"),
        "reasons": reasons,
        "metrics": train.get("metrics"),
        "champion": champion.get("version"),
        "champion_metrics": champion.get("metrics"),
        "run": train.get("run"),
        "aliases": dict(train.get("aliases") or {}),
        "pipeline_run": context.run_id,
        "labels": train.get("labels"),
    }
    with ws.catalog.write() as conn:
        append_event(
            conn,
            "loop.gate." + ("passed" if verdict["passed"] else "failed"),
            f"model:{model}",
            verdict,
        )
    context.log(
        f"gate {'passed' if verdict['passed'] else 'failed'}: "
        + ("; ".join(reasons) or "every rule held")
    )
    return verdict


@step(name="canary", cache=False)
def deploy_canary(
    model: str, deployment: str, canary: dict[str, Any], gate: dict[str, Any], context: StepContext
) -> dict[str, Any]:
    """Deploy a challenger that passed its gate as the canary; the scheduler's ticks watch it."""
    if not gate["passed"] or gate["version"] is None:
        return {"deployed": False, "reasons": gate["reasons"], "loop": None}
    if (gate.get("aliases") or {}).get("champion") == gate[
        "version"
    ]:  # the model's first version: nothing to compare with
        return {
            "deployed": False,
            "reasons": [f"v{gate['version']} is the first champion"],
            "loop": None,
        }
    from strataml.pipelines._loop import start_canary

    run = start_canary(
        context.workspace,
        model,
        int(gate["version"]),
        Canary.from_dict(canary),
        deployment=deployment,
        pipeline_run=context.run_id,
        trigger={"pipeline_run": context.run_id, "gate": gate},
    )
    context.log(f"canary {model} v{gate['version']} at {run.canary.weight:g}: loop {run.id}")
    return {
        "deployed": True,
        "loop": run.id,
        "version": int(gate["version"]),
        "weight": run.canary.weight,
    }


class Retrain:
    """The closed loop for one model, declared in ``definitions.py``.

    ``schedule`` (a cron string or ``st.Schedule``) and ``on`` (triggers: a new labels or
    source dataset version, a drift or quality alert…) say when the scheduler starts a
    run; ``canary`` holds the analysis rules (``st.Canary``); ``approval=True`` (or a
    timeout such as ``"4h"``) waits for ``strata models approve NAME@V`` before
    promoting. ``sources`` (``[{"path": …, "contract": …}]``) are ingested first.
    """

    __strata_kind__ = "pipeline"

    def __init__(
        self,
        model: Any,
        *,
        schedule: Any = None,
        on: Iterable[Any] = (),
        canary: Canary | None = None,
        approval: bool | str = False,
        deployment: str | None = None,
        name: str | None = None,
        sources: Sequence[Mapping[str, Any]] = (),
        description: str = "",
    ) -> None:
        self.model = check_name(
            model if isinstance(model, str) else getattr(model, "name", ""), "model name"
        )
        self.name = check_name(name or f"retrain_{self.model}", "pipeline name")
        self.deployment = check_name(deployment or self.model, "deployment name")
        if schedule is not None:
            from strataml.pipelines._schedule import Schedule

            Schedule.parse(schedule)  # a bad cron string fails here, at its declaration
        from strataml.pipelines._triggers import Trigger

        for t in on:
            if not isinstance(t, Trigger):
                raise ConfigError(
                    f"Retrain {self.name!r}: on= takes triggers, got {t!r}",
                    hint="e.g. on=[st.on_dataset('labels'), st.on_alert('churn-auc')]",
                )
        self.schedule = schedule
        self.triggers = list(on)
        spec = canary or Canary()
        if not isinstance(spec, Canary):
            raise ConfigError(f"Retrain {self.name!r}: canary must be st.Canary(...), got {spec!r}")
        if approval:
            timeout = approval if isinstance(approval, str) else spec.approval_timeout
            parse_duration(timeout, "approval timeout")
            spec = dataclasses.replace(spec, approval=True, approval_timeout=timeout)
        self.canary = spec
        self.sources = [dict(s) for s in sources]
        for s in self.sources:
            if not {"path", "contract"} <= set(s):
                raise ConfigError(
                    f"Retrain {self.name!r}: each source needs a path and a contract, got {s!r}",
                    hint="sources=[{'path': 'data/tx-*.parquet', 'contract': 'transactions'}]",
                )
        self.description = (
            description or f"retrain {self.model}, gate it, canary it, promote or roll back"
        )

    def params(self, labels: str) -> dict[str, Any]:
        """The run parameters the steps read."""
        return {
            "model": self.model,
            "deployment": self.deployment,
            "canary": self.canary.to_dict(),
            "sources": self.sources,
            "labels": labels,
        }

    def build(self, workspace: Any) -> Pipeline:
        """The pipeline: ingest → materialize → train → gate → canary."""
        definition = workspace.definitions.get("model", self.model)
        return Pipeline(
            self.name,
            [ingest_new, materialize_features, train_challenger, gate_challenger, deploy_canary],
            params=self.params(str(definition.labels)),
            description=self.description,
            schedule=self.schedule,
            triggers=self.triggers,
        )

    def __repr__(self) -> str:
        return f"Retrain({self.model!r}, name={self.name!r}, canary={self.canary!r})"
