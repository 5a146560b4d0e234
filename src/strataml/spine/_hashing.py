"""Stable hashes of definitions: the version of a contract, a view, a model is the
hash of its canonical JSON form, so any change makes a new version."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson


def definition_hash(definition: Mapping[str, Any]) -> str:
    """16 hex digits of the sha256 of the definition's canonical JSON (sorted keys)."""
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
