"""Checking a pipeline's graph: every input wired, no cycles, signatures that match.

The checks that need nothing but the declaration run when a :class:`Pipeline` is made
(so a mistake in ``definitions.py`` is reported at its line by the definitions loader);
:func:`check_inputs` runs before a run, against what the catalog holds.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from strataml.pipelines._refs import Input, PipelineError

if TYPE_CHECKING:
    from strataml.pipelines._pipeline import Pipeline, Step


def _wire(pipeline: Pipeline, s: Step) -> dict[str, Input]:
    """Each parameter of ``s``'s function and the input it reads."""
    prefix = f"pipeline {pipeline.name!r}: step {s.name!r} ({s.where})"
    params = s.signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for declared in s.inputs:
        if declared not in params and not accepts_any:
            raise PipelineError(
                f"{prefix} declares input {declared!r} but its function has no parameter {declared!r}"
                f" (it takes: {', '.join(params) or 'nothing'})",
                hint=f"rename the input or add a parameter {declared!r} to the function",
            )
    wiring: dict[str, Input] = dict(s.inputs)
    for pname, p in params.items():
        if pname in wiring or p.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        if pname == "context":
            continue
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise PipelineError(
                f"{prefix}: parameter {pname!r} is positional-only",
                hint="steps receive their inputs by name",
            )
        if pname in pipeline.params:
            wiring[pname] = Input("param", pname)
        elif pname in pipeline.steps and pname != s.name:
            wiring[pname] = Input("step", pname)
        elif p.default is inspect.Parameter.empty:
            raise PipelineError(
                f"{prefix} takes parameter {pname!r}, which is neither a declared input, a pipeline parameter"
                " nor the name of another step",
                hint=f"declare it: inputs={{{pname!r}: 'dataset:NAME' | 'step:NAME' | 'param:NAME' | ...}}, or give it a default",
            )
    for source in wiring.values():
        if source.kind == "step":
            if source.name not in pipeline.steps:
                known = ", ".join(sorted(pipeline.steps))
                raise PipelineError(
                    f"{prefix} reads {source} but the pipeline has no step {source.name!r} (steps: {known})",
                    hint="add the step to steps=[...] or fix the name",
                )
            if source.name == s.name:
                raise PipelineError(
                    f"{prefix} reads its own output", hint="a step cannot depend on itself"
                )
            upstream = pipeline.steps[source.name]
            if source.output is not None and source.output not in upstream.outputs:
                raise PipelineError(
                    f"{prefix} reads output {source.output!r} of step {source.name!r}, which declares outputs"
                    f" {list(upstream.outputs) or 'none (it has one output)'}",
                    hint=f"declare outputs=[{source.output!r}, ...] on {source.name!r} or read 'step:{source.name}'",
                )
        elif source.kind == "param" and source.name not in pipeline.params:
            raise PipelineError(
                f"{prefix} reads param {source.name!r}, which the pipeline does not declare",
                hint=f"add it to Pipeline(..., params={{{source.name!r}: DEFAULT}})",
            )
    return wiring


def _find_cycle(upstream: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(upstream[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(upstream):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check_pipeline(pipeline: Pipeline) -> tuple[dict[str, dict[str, Input]], dict[str, set[str]]]:
    """The wiring of every step and the steps each one waits for; raises on a bad graph."""
    if not pipeline.steps:
        raise PipelineError(f"pipeline {pipeline.name!r} has no steps", hint="pass steps=[...]")
    wiring = {name: _wire(pipeline, s) for name, s in pipeline.steps.items()}
    producers: dict[tuple[str, str], str] = {}
    for name, s in pipeline.steps.items():
        for thing in s.produces:
            key = (thing.kind, thing.name.split("@")[0])
            if key in producers:
                raise PipelineError(
                    f"pipeline {pipeline.name!r}: steps {producers[key]!r} and {name!r} both produce {thing.kind} {thing.name!r}",
                    hint="let one step produce it",
                )
            producers[key] = name
    upstream: dict[str, set[str]] = {name: set() for name in pipeline.steps}
    for name, s in pipeline.steps.items():
        for after in s.after:
            if after not in pipeline.steps:
                raise PipelineError(
                    f"pipeline {pipeline.name!r}: step {name!r} ({s.where}) runs after {after!r}, which is not a step of the pipeline",
                    hint="add the step to steps=[...] or fix the name",
                )
            upstream[name].add(after)
        for source in wiring[name].values():
            if source.kind == "step":
                upstream[name].add(source.name)
            else:
                producer = producers.get((source.kind, source.name.split("@")[0]))
                if producer is not None and producer != name:
                    upstream[name].add(producer)
    cycle = _find_cycle(upstream)
    if cycle:
        raise PipelineError(
            f"pipeline {pipeline.name!r} has a cycle: {' -> '.join(reversed(cycle))}",
            hint="a step cannot depend, directly or through others, on itself",
        )
    return wiring, upstream


def topological(upstream: dict[str, set[str]]) -> list[str]:
    """Steps ordered so each follows what it waits for (ties in declaration order)."""
    done: list[str] = []
    placed: set[str] = set()
    remaining = list(upstream)
    while remaining:
        for name in remaining:
            if upstream[name] <= placed:
                done.append(name)
                placed.add(name)
                remaining.remove(name)
                break
        else:  # pragma: no cover - check_pipeline refuses cycles
            raise PipelineError(f"cycle among {remaining}")
    return done


def check_inputs(workspace: Any, pipeline: Pipeline) -> None:
    """Before a run: every dataset, feature view and model a step reads exists, or a step of
    the pipeline produces it. Raises :class:`PipelineError` naming the step's line."""
    from strataml.data import list_datasets
    from strataml.models import list_models

    produced = {(t.kind, t.name.split("@")[0]) for s in pipeline.steps.values() for t in s.produces}
    datasets: set[str] | None = None
    models: set[str] | None = None
    for name, wiring in pipeline.wiring.items():
        s = pipeline.steps[name]
        for source in wiring.values():
            base = source.name.split("@")[0]
            if source.kind in ("step", "param") or (source.kind, base) in produced:
                continue
            where = f"{pipeline.where}: pipeline {pipeline.name!r}: step {name!r} ({s.where})"
            if source.kind == "dataset":
                if datasets is None:
                    datasets = {
                        d["name"] for d in list_datasets(workspace.catalog) if d.get("latest")
                    }
                if base not in datasets:
                    raise PipelineError(
                        f"{where} reads dataset {base!r}, which has no versions",
                        hint=f"run 'strata ingest {base} FILE' first, or add a step with produces=['dataset:{base}']",
                    )
            elif source.kind == "feature_view":
                declared = {v.name for v in workspace.definitions.all("feature_view")}
                if base not in declared:
                    raise PipelineError(
                        f"{where} reads feature view {base!r}, which definitions.py does not declare",
                        hint="declare it with st.FeatureView(...)",
                    )
            elif source.kind == "model":
                if models is None:
                    models = {m["name"] for m in list_models(workspace) if m.get("versions")}
                if base not in models:
                    raise PipelineError(
                        f"{where} reads model {base!r}, which has no registered version",
                        hint=f"train it first ('strata train {base}') or add a step with produces=['model:{base}']",
                    )


def run_edges(workspace: Any, pipeline: Pipeline) -> dict[str, set[str]]:
    """The steps each step waits for in a run: the declared edges, plus those found in the
    workspace — a step reading a feature view waits for the step producing the view's
    source dataset, a built-in step for the producers of what its definition reads."""
    producers = {
        (t.kind, t.name.split("@")[0]): name
        for name, s in pipeline.steps.items()
        for t in s.produces
    }
    if not producers:
        return pipeline.upstream
    declared_views = {v.name: v for v in workspace.definitions.all("feature_view")}
    upstream = {name: set(deps) for name, deps in pipeline.upstream.items()}
    for name, s in pipeline.steps.items():
        refs = list(pipeline.wiring[name].values())
        if s.reads is not None:
            refs += [Input.parse(r) for r in s.reads(workspace, s.config)]
        keys = set()
        for ref in refs:
            base = ref.name.split("@")[0]
            keys.add((ref.kind, base))
            view = declared_views.get(base) if ref.kind == "feature_view" else None
            if view is not None and isinstance(view.source, str):
                keys.add(("dataset", view.source))
        for key in keys:
            producer = producers.get(key)
            if producer is not None and producer != name:
                upstream[name].add(producer)
    cycle = _find_cycle(upstream)
    if cycle:
        raise PipelineError(
            f"{pipeline.where}: pipeline {pipeline.name!r} has a cycle through what its steps read and produce:"
            f" {' -> '.join(reversed(cycle))}",
            hint="a step cannot depend, directly or through others, on itself",
        )
    return upstream
