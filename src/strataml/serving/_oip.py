"""The Open Inference Protocol (v2) as the gateway speaks it: metadata that advertises
what a request takes, and the binary tensor data extension.

A model's metadata lists as ``inputs`` the fields an inference request carries: the
entity keys and request-time fields of a model with feature views (its stored features
are looked up, and listed under ``parameters.looked_up_features``), else its features.

Binary tensor data (the ``Inference-Header-Content-Length`` header): the body is the
JSON inference header followed by each input's raw little-endian bytes, as many as its
``parameters.binary_data_size``; ``BYTES`` elements are each a 4-byte length and the
bytes. Responses come back the same way when the request asks for it
(``parameters.binary_data_output``, or ``binary_data`` on a requested output).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from strataml.serving._bodies import BadRequest
from strataml.serving._servable import InputError, Servable

#: the protocol's datatypes whose binary form numpy reads directly
NUMPY_TYPES = {
    "BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1", "UINT16": "<u2",
    "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
_DTYPE = {"float": "FP64", "double": "FP64", "int": "INT64", "integer": "INT64", "int64": "INT64", "bool": "BOOL"}
EXTENSIONS = ["binary_tensor_data"]


def _datatype(kind: str | None) -> str:
    return _DTYPE.get(kind or "", "BYTES")


def request_inputs(s: Servable) -> list[dict[str, Any]]:
    """The tensors an inference request for ``s`` carries, in the order of an [N, F] tensor's columns."""
    if s.views:
        names = list(dict.fromkeys([*s.entity_keys, *s.request_fields]))
        return [{"name": n, "datatype": _datatype(s.field_types.get(n)), "shape": [-1]} for n in names]
    return [{"name": f.name, "datatype": _datatype(f.type), "shape": [-1]} for f in s.features]


def model_metadata(name: str, s: Servable) -> dict[str, Any]:
    """``GET /v2/models/{name}``: what a request takes, and which features are looked up."""
    inputs = request_inputs(s)
    given = {i["name"] for i in inputs}
    doc: dict[str, Any] = {
        "name": name, "versions": [str(s.version)], "platform": "strataml", "inputs": inputs,
        "outputs": [{"name": "predictions", "datatype": "FP64", "shape": [-1, len(s.classes)] if s.output == "multiclass" else [-1]}],
        "parameters": {"output_kind": s.output, "looked_up_features": [f.name for f in s.features if f.name not in given], "feature_views": list(s.views)},
    }
    return doc


def decode_request(body: bytes, header_length: str | None, decode: Any) -> Any:
    """The inference request in ``body`` (``decode``: the gateway's JSON parser, with its
    checks); with ``header_length``, the binary data extension's tensors are read into ``data``."""
    if header_length is None:
        return decode(body)
    if not header_length.isdigit() or int(header_length) > len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length[:20]!r} is not a length within the body of {len(body)} bytes",
            hint="the binary tensor data extension sends the JSON header's length in bytes",
        )
    n = int(header_length)
    doc = decode(body[:n])
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        return doc
    offset = n
    for t in doc["inputs"]:
        params = t.get("parameters") if isinstance(t, dict) else None
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(body):
            raise BadRequest(f"input {t.get('name')!r}: binary_data_size {size!r} runs past the end of the body", hint="send each tensor's bytes after the JSON header")
        t["data"] = _from_bytes(body[offset : offset + size], t.get("datatype"), t.get("name"))
        offset += size
    if offset != len(body):
        raise BadRequest(f"{len(body) - offset} bytes follow the binary tensors", hint="binary_data_size must cover every byte after the JSON header")
    return doc


def _from_bytes(raw: bytes, datatype: Any, name: Any) -> list[Any]:
    if datatype == "BYTES":
        out: list[Any] = []
        i = 0
        while i < len(raw):
            if i + 4 > len(raw):
                raise BadRequest(f"input {name!r}: a BYTES element's length is cut short")
            k = int.from_bytes(raw[i : i + 4], "little")
            item = raw[i + 4 : i + 4 + k]
            if len(item) != k:
                raise BadRequest(f"input {name!r}: a BYTES element runs past its tensor")
            try:
                out.append(item.decode())
            except UnicodeDecodeError:
                raise InputError(f"input {name!r}: BYTES elements must be UTF-8 text") from None
            i += 4 + k
        return out
    dt = NUMPY_TYPES.get(datatype) if isinstance(datatype, str) else None
    if dt is None:
        raise InputError(f"input {name!r}: datatype {datatype!r} cannot be sent as binary data", hint=f"use one of {', '.join([*NUMPY_TYPES, 'BYTES'])}")
    if len(raw) % np.dtype(dt).itemsize:
        raise BadRequest(f"input {name!r}: {len(raw)} bytes are not a whole number of {datatype} values")
    values: list[Any] = np.frombuffer(raw, dtype=dt).tolist()
    return values


def wants_binary(doc: dict[str, Any]) -> bool:
    """Whether the request asks for its outputs as binary data."""
    params = doc.get("parameters")
    if isinstance(params, dict) and params.get("binary_data_output") is True:
        return True
    outs = doc.get("outputs")
    return isinstance(outs, list) and any(isinstance(o, dict) and isinstance(o.get("parameters"), dict) and o["parameters"].get("binary_data") is True for o in outs)


def encode_response(doc: dict[str, Any], binary: bool) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or the JSON header followed by FP64 tensors."""
    if not binary:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=str), {"content-type": "application/json"}
    blobs = []
    for out in doc["outputs"]:
        raw = np.asarray([np.nan if x is None else x for x in out.pop("data")], dtype="<f8").tobytes()
        out["parameters"] = {**(out.get("parameters") or {}), "binary_data_size": len(raw)}
        blobs.append(raw)
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return header + b"".join(blobs), {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))}
