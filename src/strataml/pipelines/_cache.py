"""The step cache: a step's key is the hash of its code and of everything it reads.

What a step reads is resolved to immutable things — a dataset *version*, a feature
view's definition version, a model *version*, a parameter's value, an upstream step's
stored output — so the key changes exactly when a re-run could produce something
different. Outputs are stored by the spine, never by the step: tables (Arrow or pandas)
as Parquet in the artifact store under their sha256, other values as JSON in the catalog.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import textwrap
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from strataml.errors import StrataError
from strataml.pipelines._refs import Input
from strataml.pipelines._tables import pipeline_cache

if TYPE_CHECKING:
    from strataml.pipelines._pipeline import Pipeline, Step
    from strataml.spine import Workspace

#: JSON outputs larger than this go to the artifact store instead of the catalog
INLINE_JSON_BYTES = 256 * 1024


class StepOutputError(StrataError):
    """A step returned something strataml cannot store."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=str
    )


def code_hash(step: Step) -> str:
    """The hash of a step's function source (or byte code) and its declaration."""
    fn = step.fn
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        source = repr((code.co_code, code.co_consts)) if code is not None else repr(fn)
    parts = {"source": source, "outputs": list(step.outputs), "config": step.config}
    return _sha(_json(parts))


def resolve_inputs(
    workspace: Workspace,
    pipeline: Pipeline,
    name: str,
    params: dict[str, Any],
    done: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """What each parameter of step ``name`` receives (a descriptor the worker turns into a
    value) and the material of its cache key (immutable ids, hashes and values)."""
    args: dict[str, dict[str, Any]] = {}
    material: dict[str, Any] = {}
    for param, source in pipeline.wiring[name].items():
        desc, mat = _resolve(workspace, source, params, done)
        args[param] = desc
        material[param] = mat
    return args, material


def _resolve(
    workspace: Workspace, source: Input, params: dict[str, Any], done: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], Any]:
    if source.kind == "param":
        value = params.get(source.name)
        return {"kind": "value", "value": value}, {"param": value}
    if source.kind == "step":
        out = done[source.name]
        if source.output is not None:
            out = out["outputs"][source.output]
        return {"kind": "output", "output": out}, {"step": out["sha256"]}
    if source.kind == "dataset":
        from strataml.data import get_version

        dv = get_version(workspace, source.name)
        return {"kind": "dataset", "ref": dv.ref}, {"dataset": dv.ref, "sha256": dv.sha256}
    if source.kind == "feature_view":
        from strataml.data import latest_version
        from strataml.features import resolve_view

        view = resolve_view(workspace, source.name)
        src = latest_version(workspace, view.source) if isinstance(view.source, str) else None
        mat = {"feature_view": f"{view.name}@{view.version}", "source": src.ref if src else None}
        return {"kind": "feature_view", "ref": f"{view.name}@{view.version}"}, mat
    from strataml.models import get_model, resolve_version

    model, _, alias = source.name.partition("@")
    versions = get_model(workspace, model)["versions"]
    number = resolve_version(workspace, model, alias) if alias else max(int(v["version"]) for v in versions)
    sha = next(v["sha256"] for v in versions if int(v["version"]) == number)
    return {"kind": "model", "ref": f"{model}@{number}"}, {
        "model": f"{model}@{number}",
        "sha256": sha,
    }


def cache_key(step: Step, material: dict[str, Any], extra: Any = None) -> str:
    """The key of one execution of ``step`` over resolved inputs."""
    return _sha(_json({"code": code_hash(step), "inputs": material, "extra": extra}))


def cached_output(workspace: Workspace, key: str) -> dict[str, Any] | None:
    """The stored output of an earlier execution with the same key, if its files still exist."""
    t = pipeline_cache
    with workspace.catalog.read() as conn:
        row = conn.execute(sa.select(t.c.output).where(t.c.cache_key == key)).scalar()
    if row is None:
        return None
    output = dict(row)
    if all(workspace.artifacts.exists(sha) for sha in _artifacts_of(output)):
        return output
    return None


def _artifacts_of(desc: dict[str, Any]) -> list[str]:
    if desc.get("kind") == "multi":
        return [sha for sub in desc["outputs"].values() for sha in _artifacts_of(sub)]
    return [desc["sha256"]] if desc.get("stored") == "artifact" else []


# --- storing and loading values -----------------------------------------------------


def store_value(workspace: Workspace, step: Step, value: Any) -> dict[str, Any]:
    """Store what a step returned; the descriptor is what the catalog records.

    Every output is encoded before anything is written, so a value that cannot be stored
    leaves nothing behind."""
    blobs: list[bytes] = []
    if step.outputs:
        if not isinstance(value, dict) or set(value) != set(step.outputs):
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise StepOutputError(
                f"step {step.name!r} ({step.where}) declares outputs {list(step.outputs)} but returned {got}",
                hint="return a dict with exactly the declared output names as keys",
            )
        outputs = {k: _encode(step, value[k], blobs) for k in step.outputs}
        desc = {
            "kind": "multi",
            "outputs": outputs,
            "sha256": _sha(_json({k: o["sha256"] for k, o in outputs.items()})),
        }
    else:
        desc = _encode(step, value, blobs)
    for data in blobs:
        workspace.artifacts.put_bytes(data)
    return desc


def _encode(step: Step, value: Any, blobs: list[bytes]) -> dict[str, Any]:
    """The descriptor of one output; bytes for the artifact store are appended to ``blobs``."""
    table, fmt = _as_table(value)
    if table is not None:
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf)
        blobs.append(buf.getvalue())
        return {
            "kind": "table",
            "format": fmt,
            "stored": "artifact",
            "sha256": _sha(blobs[-1]),
            "rows": table.num_rows,
        }
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise StepOutputError(
            f"step {step.name!r} ({step.where}) returned a {type(value).__name__}, which cannot be stored: {exc}",
            hint="return a pandas DataFrame, a pyarrow Table or a JSON-serialisable value (dict, list, str, number)",
        ) from exc
    sha = _sha(data)
    if len(data) > INLINE_JSON_BYTES:
        blobs.append(data)
        return {"kind": "json", "stored": "artifact", "sha256": sha, "bytes": len(data)}
    return {"kind": "json", "stored": "inline", "sha256": sha, "value": orjson.loads(data)}


def _as_table(value: Any) -> tuple[Any, str]:
    """``(pyarrow table, original format)`` for a table-like value, else ``(None, "")``."""
    module = type(value).__module__
    if module.startswith("pyarrow") and type(value).__name__ == "Table":
        return value, "arrow"
    if module.startswith("pandas") and type(value).__name__ == "DataFrame":
        import pyarrow as pa

        return pa.Table.from_pandas(value), "pandas"
    return None, ""


def load_value(workspace: Workspace, desc: dict[str, Any]) -> Any:
    """The value a stored output descriptor stands for (hashes verified on read)."""
    kind = desc.get("kind")
    if kind == "multi":
        return {k: load_value(workspace, d) for k, d in desc["outputs"].items()}
    if kind == "table":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(workspace.artifacts.read_bytes(desc["sha256"])))
        return table.to_pandas() if desc.get("format") == "pandas" else table
    if desc.get("stored") == "artifact":
        return orjson.loads(workspace.artifacts.read_bytes(desc["sha256"]))
    return desc.get("value")
