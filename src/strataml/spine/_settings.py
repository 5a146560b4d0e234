"""Typed settings resolved explicit argument > ``STRATA_*`` environment > ``strata.toml`` > default.

Nothing is frozen at import time: :func:`load_settings` reads the environment and the
file each time it is called.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from strataml.errors import ConfigError

ENV_PREFIX = "STRATA_"
CONFIG_FILE = "strata.toml"


class Settings(BaseModel):
    """Connections and tuning knobs of a workspace.

    URLs may be relative paths; they resolve against the workspace root. ``{state}``
    in a URL stands for the state directory.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: str = Field(".strata", description="where local state lives, relative to the workspace")
    catalog: str = Field("sqlite:///{state}/catalog.db", description="SQLAlchemy URL of the catalog")
    artifacts: str = Field("{state}/artifacts", description="fsspec URL or path of the artifact store")
    online: str = Field("sqlite:///{state}/online.db", description="online store URL (sqlite:/// or redis://)")
    queue: str = Field("sqlite:///{state}/queue.db", description="queue URL (sqlite:///, redis://, amqp:// or nats://)")
    memory_limit: str = Field("1GB", description="memory the offline engine (DuckDB) may use before spilling")
    threads: int = Field(0, ge=0, le=1024, description="offline engine threads; 0 means one per core")
    ray: str | None = Field(None, description="Ray address (ray://host:port) for --engine ray")
    http_retries: int = Field(5, ge=0, le=50, description="attempts for HTTP sources")
    http_timeout: float = Field(30.0, gt=0, description="seconds per HTTP request")

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", v, re.I):
            raise ValueError("expected a size such as '512MB' or '2GB'")
        return v.strip()

    @field_validator("catalog", "online", "queue")
    @classmethod
    def _url(cls, v: str) -> str:
        if "://" not in v:
            raise ValueError("expected a URL such as 'sqlite:///path.db' or 'postgresql://host/db'")
        return v


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            out[name] = environ[key]
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """Read ``strata.toml``; a syntax error names the file and line."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", hint="fix the syntax of the file") from exc
    section = data.get("strata", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [strata] must be a table")
    return {k: v for k, v in section.items() if not isinstance(v, dict)}


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: ``overrides`` > environment > config file > defaults."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if config_file is not None and config_file.exists():
        for k, v in read_config_file(config_file).items():
            merged[k] = v
            sources[k] = str(config_file)
    for k, v in _env_overrides(os.environ if environ is None else environ).items():
        merged[k] = v
        sources[k] = ENV_PREFIX + k.upper()
    for k, v in overrides.items():
        if v is not None:
            merged[k] = v
            sources[k] = "argument"
    try:
        return Settings(**merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            value = merged.get(key, "<missing>")
            where = sources.get(key, "default")
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(Settings.model_fields))
                problems.append(f"unknown setting '{key}' (from {where}); known settings: {allowed}")
            else:
                desc = Settings.model_fields[key].description if key in Settings.model_fields else ""
                problems.append(f"setting '{key}' = {value!r} (from {where}) is invalid: {err['msg']}; {desc}")
        raise ConfigError("; ".join(problems), hint="correct the value in strata.toml or the STRATA_* variable") from None
