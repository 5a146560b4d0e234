"""Declaring a pipeline: steps (Python functions with declared inputs and outputs) in a DAG.

A step reads *inputs* — a dataset version, a feature view, a model version, a parameter
of the run, or the output of another step — and returns its output. The graph is checked
when the pipeline is declared (unknown steps, cycles, a function's signature against its
declared inputs) and again before a run (inputs the catalog must hold), and each problem
is reported at the line of ``definitions.py`` that declared it.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, overload

from strataml.pipelines._graph import check_pipeline, topological
from strataml.pipelines._refs import Input, PipelineError


def _code_site(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", repr(fn))
    return f"{Path(code.co_filename).name}:{code.co_firstlineno}"


def _caller_site(depth: int = 2) -> str:
    """``file:line`` of the first frame outside this package (the user's declaration)."""
    package = str(Path(__file__).resolve().parent.parent)
    frame = sys._getframe(depth)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>"
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


def _seconds(value: float | str | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    for suffix in sorted(units, key=len, reverse=True):
        if value.endswith(suffix):
            try:
                return float(value[: -len(suffix)]) * units[suffix]
            except ValueError:
                break
    raise PipelineError(
        f"timeout {value!r} is not a duration", hint="write seconds (30) or '30s', '10m', '2h'"
    )


class Step:
    """One step of a pipeline: a function, what it reads, what it produces, how it retries.

    Make one with the :func:`step` decorator. Calling a step calls its function.
    """

    __strata_step__ = True

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        inputs: Mapping[str, str | Step | Input] | None = None,
        outputs: Iterable[str] | None = None,
        produces: Iterable[str] = (),
        after: Iterable[str | Step] = (),
        retries: int = 0,
        retry_on: Iterable[type[BaseException]] = (),
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float | str | None = None,
        cache: bool = True,
        fingerprint: Callable[[Any, dict[str, Any]], Any] | None = None,
        reads: Callable[[Any, dict[str, Any]], list[str]] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise PipelineError(
                f"a step needs a function, got {fn!r}", hint="decorate a function with @step"
            )
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "step"))
        self.where = _code_site(fn)
        prefix = f"step {self.name!r} ({self.where}): "
        self.inputs = {
            param: Input.parse(spec, where=prefix) for param, spec in (inputs or {}).items()
        }
        self.outputs = tuple(outputs) if outputs is not None else ()
        self.produces = tuple(Input.parse(p, where=prefix) for p in produces)
        self.after = tuple(a.name if isinstance(a, Step) else a for a in after)
        if retries < 0:
            raise PipelineError(f"{prefix}retries must be >= 0")
        self.retries = int(retries)
        self.retry_on = tuple(retry_on)
        for exc in self.retry_on:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise PipelineError(f"{prefix}retry_on must list exception classes, got {exc!r}")
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.timeout = _seconds(timeout)
        if self.timeout is not None and self.timeout <= 0:
            raise PipelineError(f"{prefix}timeout must be positive")
        self.cache = cache
        self.fingerprint = fingerprint
        self.config = dict(config or {})
        self.reads = reads
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # a decorated module-level function is found again by its module and name;
        # otherwise (built-in steps) the step travels as its state
        module = sys.modules.get(getattr(self.fn, "__module__", "") or "")
        qualname = getattr(self.fn, "__qualname__", "")
        if module is not None and getattr(module, qualname, None) is self:
            return (_step_by_name, (module.__name__, qualname))
        state = {k: v for k, v in self.__dict__.items() if k != "signature"}
        return (_step_from_state, (state,))

    def __repr__(self) -> str:
        return f"Step({self.name!r})"

    def wants_context(self) -> bool:
        """Whether the function takes a ``context`` parameter (a :class:`StepContext`)."""
        return "context" in self.signature.parameters and "context" not in self.inputs


def _step_by_name(module: str, qualname: str) -> Step:
    import importlib

    found = getattr(importlib.import_module(module), qualname)
    assert isinstance(found, Step)
    return found


def _step_from_state(state: dict[str, Any]) -> Step:
    obj = Step.__new__(Step)
    obj.__dict__.update(state)
    obj.signature = inspect.signature(obj.fn)
    return obj


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    inputs: Mapping[str, str | Step | Input] | None = None,
    outputs: Iterable[str] | None = None,
    produces: Iterable[str] = (),
    after: Iterable[str | Step] = (),
    retries: int = 0,
    retry_on: Iterable[type[BaseException]] = (),
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float | str | None = None,
    cache: bool = True,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None, /, **options: Any
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Declare a function as a pipeline step.

    ``inputs`` maps a parameter of the function to what it reads (``"dataset:NAME"``,
    ``"feature_view:NAME"``, ``"model:NAME@ALIAS"``, ``"param:NAME"``, ``"step:NAME"`` or a
    step); a parameter left out reads the run parameter or the step of the same name.
    ``outputs`` names the keys of a returned dict (each its own output); ``produces``
    names what the step writes to the catalog (``"dataset:NAME"``, ``"model:NAME"``) so
    steps reading it run after it. ``retries`` more attempts, with exponential backoff
    and jitter, follow an error of a type in ``retry_on``; ``timeout`` bounds each
    attempt. ``cache=False`` runs the step every time.
    """
    if fn is not None:
        return Step(fn, **options)

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, **options)

    return wrap


class Pipeline:
    """A named DAG of steps, declared in ``definitions.py``.

    ``params`` are the run parameters and their defaults (``strata pipelines run NAME
    --param k=v`` overrides them). ``schedule`` and ``triggers`` say when the scheduler
    starts a run.
    """

    __strata_kind__ = "pipeline"

    def __init__(
        self,
        name: str,
        steps: Iterable[Step],
        *,
        params: Mapping[str, Any] | None = None,
        description: str = "",
        schedule: Any = None,
        triggers: Iterable[Any] = (),
    ) -> None:
        self.name = name
        self.where = _caller_site()
        self.steps: dict[str, Step] = {}
        self.params = dict(params or {})
        self.description = description
        self.schedule = schedule
        self.triggers = list(triggers)
        for s in steps:
            if not isinstance(s, Step):
                raise PipelineError(
                    f"pipeline {name!r}: {s!r} is not a step",
                    hint="decorate the function with @st.step",
                )
            if s.name in self.steps:
                raise PipelineError(
                    f"pipeline {name!r} has two steps named {s.name!r}",
                    hint="give each step a unique name",
                )
            self.steps[s.name] = s
        self.wiring, self.upstream = check_pipeline(self)

    def build(self, workspace: Any) -> Pipeline:
        """The pipeline itself (a declared object of kind ``pipeline`` builds one)."""
        return self

    def order(self) -> list[str]:
        """The steps in an order where every step follows the steps it reads."""
        return topological(self.upstream)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={list(self.steps)})"
