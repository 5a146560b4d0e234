"""References a step declares: the inputs it reads and what it produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strataml.errors import ConfigError

#: the kinds of thing a step can read
INPUT_KINDS = ("dataset", "feature_view", "model", "param", "step")


class PipelineError(ConfigError):
    """A pipeline or one of its steps is declared wrongly; the message names the line."""


@dataclass(frozen=True)
class Input:
    """One declared input of a step: ``kind`` (see :data:`INPUT_KINDS`) and what it names.

    Written in declarations as a string ``"dataset:transactions"``, ``"dataset:transactions@v3"``,
    ``"feature_view:user_spend"``, ``"model:fraud@champion"``, ``"param:threshold"``,
    ``"step:clean"`` (``"step:clean.rows"`` for one named output), or a :class:`Step` itself.
    """

    kind: str
    name: str
    output: str | None = None

    @classmethod
    def parse(cls, spec: Any, *, where: str = "") -> Input:
        """An input from its declared form."""
        if isinstance(spec, Input):
            return spec
        if getattr(type(spec), "__strata_step__", False):
            return cls("step", spec.name)  # type: ignore[union-attr]
        if not isinstance(spec, str) or ":" not in spec:
            raise PipelineError(
                f"{where}input {spec!r} is not a reference",
                hint="write 'dataset:NAME', 'feature_view:NAME', 'model:NAME@ALIAS', 'param:NAME', 'step:NAME' or pass the step",
            )
        kind, _, name = spec.partition(":")
        if kind not in INPUT_KINDS or not name:
            raise PipelineError(
                f"{where}input {spec!r} has unknown kind {kind!r}",
                hint=f"use one of {', '.join(INPUT_KINDS)}",
            )
        output = None
        if kind == "step" and "." in name:
            name, _, output = name.partition(".")
        return cls(kind, name, output)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + (f".{self.output}" if self.output else "")
