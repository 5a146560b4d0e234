"""The properties every model format keeps (run by :func:`strataml.testing.check_model_format`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from strataml.models import ModelFormat


@dataclass
class _FormatCase:
    """One model in one format, with what the checks need to run it."""

    fmt: ModelFormat
    fitted: Any  # a fitted estimator the format claims, or the bytes of a file in it
    rows: list[dict[str, Any]]
    signature: Mapping[str, Any]
    definition: Any
    trusted: list[str]
    extra_modules: tuple[str, ...]
    recorded: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.signature["output"]["kind"])

    @property
    def classes(self) -> list[Any]:
        return list(self.signature["output"].get("classes") or [])

    def data(self) -> bytes:
        """The file: the fitted estimator dumped (the types it needs trusted are recorded), or the bytes given."""
        if isinstance(self.fitted, bytes):
            return self.fitted
        ser = self.fmt.dump(self.fitted, self.trusted)
        self.recorded = list(ser.trusted_types)
        return ser.data

    def load(self, data: bytes) -> Any:
        """What the format loads from ``data``, trusting the types recorded when it was dumped."""
        return self.fmt.load(data, trusted_types=self.recorded, where="the checked file", estimator=self.definition)

    def reference(self) -> Any:
        """The prediction object the checks compare against (the fitted model itself, not its file)."""
        return self.load(self.fitted) if isinstance(self.fitted, bytes) else self.fmt.native(self.fitted)

    def frame(self, rows: list[dict[str, Any]] | None = None, fmt: Any = None) -> Any:
        from strataml.models import prepare

        return prepare(self.rows if rows is None else rows, self.signature, fmt or self.fmt)

    def predict(self, native: Any, rows: list[dict[str, Any]] | None = None) -> Any:
        import numpy as np

        return np.asarray(self.fmt.predict_matrix(native, self.frame(rows), self.kind, self.classes, 1))


def _refused(call: Callable[[], Any], what: str, match: str = "") -> None:
    from strataml.errors import UnsafeModel

    try:
        call()
    except UnsafeModel as exc:
        assert match in exc.message, f"{what}: refused, but the message does not say {match!r}: {exc.message}"
    else:
        raise AssertionError(f"{what} was accepted")


def format_claims_what_it_saves(case: _FormatCase) -> None:
    if isinstance(case.fitted, bytes):
        return
    assert case.fmt.claims(case.fitted), f"does not claim the {type(case.fitted).__name__} it is checked with"
    ser = case.fmt.dump(case.fitted, case.trusted)
    assert ser.format == case.fmt.name, f"dump records format {ser.format!r}, not {case.fmt.name!r}"
    assert case.fmt.dump(case.fitted, case.trusted).data == ser.data, "two dumps of one model differ (bytes are not canonical)"


def format_round_trip_predicts_byte_identically(case: _FormatCase) -> None:
    data = case.data()
    case.fmt.verify(data, "the checked file")
    expected = case.predict(case.reference())
    got = case.predict(case.load(data))
    assert got.shape == expected.shape and got.tobytes() == expected.tobytes(), (
        f"predictions after dump, verify and load differ from the model's own (largest difference "
        f"{abs(got.astype(float) - expected.astype(float)).max() if got.shape == expected.shape else got.shape})"
    )


def format_refuses_what_is_not_its_file(case: _FormatCase) -> None:
    for junk in (b"import os; os.system('id')\n", b"\x00" * 64):
        _refused(lambda j=junk: case.fmt.verify(j, "junk"), f"verify({junk[:12]!r}...)")  # type: ignore[misc]
        _refused(lambda j=junk: case.load(j), f"load({junk[:12]!r}...)")  # type: ignore[misc]


def format_refuses_pickle(case: _FormatCase) -> None:
    import io
    import pickle
    import zipfile

    payloads = {f"a protocol-{p} pickle": pickle.dumps({"weights": [1.0, 2.0]}, protocol=p) for p in (2, 4, 5)}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:  # the layout of torch.save
        z.writestr("archive/data.pkl", payloads["a protocol-2 pickle"])
    payloads["a zip holding a pickle"] = zipped.getvalue()
    for what, payload in payloads.items():
        _refused(lambda p=payload: case.fmt.verify(p, "the checked file"), f"verify of {what}", "pickle")  # type: ignore[misc]
        _refused(lambda p=payload: case.load(p), f"load of {what}", "pickle")  # type: ignore[misc]


@contextmanager
def _hidden(modules: tuple[str, ...]) -> Iterator[None]:
    """``import`` of ``modules`` fails inside (as when the extra is not installed)."""
    import sys

    saved = {m: sys.modules.get(m) for m in modules}
    try:
        for m in modules:
            sys.modules[m] = None  # type: ignore[assignment]
        yield
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod


def format_names_a_missing_extra(case: _FormatCase) -> None:
    from strataml.errors import MissingExtra

    if case.fmt.extra is None:
        return
    data = case.data()
    with _hidden(case.extra_modules):
        try:
            case.load(data)
        except MissingExtra as exc:
            want = f"pip install 'strataml[{case.fmt.extra}]'"
            assert exc.hint == want, f"without {case.extra_modules} the hint is {exc.hint!r}, not {want!r}"
        else:
            raise AssertionError(f"loaded without {', '.join(case.extra_modules)} installed, or without naming the extra")


class _Feature(NamedTuple):
    name: str
    type: str


class _Loaded:
    """What a format's row predictor is given: the loaded model's format, predictor and signature."""

    def __init__(self, case: _FormatCase, native: Any) -> None:
        self.format = case.fmt.name
        self.signature = dict(case.signature)
        self.predictor = self
        self.native = native


def format_row_predictor_answers_like_the_matrix(case: _FormatCase) -> None:
    import numpy as np

    native = case.load(case.data())
    feats = [_Feature(i["name"], i["type"]) for i in case.signature["inputs"]]
    names = [f.name for f in feats]

    def generic(rows: list[dict[str, Any]]) -> Any:
        out = case.predict(native, [{n: r.get(n) for n in names} for r in rows])
        return [dict(zip(case.classes, map(float, r), strict=True)) for r in out] if case.kind == "multiclass" else out

    fast = case.fmt.row_predictor(_Loaded(case, native), feats, generic)
    if fast is None:
        return

    def values(raw: Any) -> Any:
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            return np.asarray([[r[c] for c in case.classes] for r in raw], dtype=np.float64)
        out = np.asarray(raw, dtype=np.float64)
        return out[:, 1] if case.kind == "binary" and out.ndim == 2 and out.shape[1] == 2 else out

    for batch in [case.rows, *([r] for r in case.rows[:20])]:
        a, b = values(fast(batch)), values(generic(batch))
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True), (
            f"the row predictor answers {a[:3].tolist()} where the matrix predictor answers {b[:3].tolist()} "
            f"(on {len(batch)} row(s))"
        )


def format_onnx_export_predicts_like_the_model(case: _FormatCase) -> None:
    import numpy as np

    from strataml.models import ExportRefused
    from strataml.models._onnx_runtime import load_onnx

    native = case.load(case.data())
    try:
        proto = case.fmt.to_onnx(native, case.signature)
    except ExportRefused:
        return  # a refusal that names why (e.g. string inputs its converter cannot encode); a missing converter is no pass
    if proto is None:
        return
    exported = load_onnx(proto.SerializeToString(), "the ONNX export")
    classes = getattr(native, "classes_", None)
    if classes is not None:  # the export's probability columns follow the estimator's classes
        exported.classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    frame = case.frame(fmt="onnx")
    got = np.asarray(exported.predict_matrix(frame, case.kind, case.classes), dtype=np.float64)
    expected = case.predict(native).astype(np.float64)
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if case.kind == "regression" and expected.size else 1.0
    assert got.shape == expected.shape, f"the ONNX export answers with shape {got.shape}, the model with {expected.shape}"
    diff = float(np.nanmax(np.abs(got - expected))) if got.size else 0.0
    assert diff <= 1e-4 * scale, f"the ONNX export's predictions differ from the model's by up to {diff:.3g}"


MODEL_FORMAT_CHECKS: list[Callable[[_FormatCase], None]] = [
    format_claims_what_it_saves,
    format_round_trip_predicts_byte_identically,
    format_refuses_what_is_not_its_file,
    format_refuses_pickle,
    format_names_a_missing_extra,
    format_row_predictor_answers_like_the_matrix,
    format_onnx_export_predicts_like_the_model,
]


def check_model_format(
    fmt: ModelFormat,
    fitted: Any,
    rows: list[dict[str, Any]],
    signature: Mapping[str, Any],
    *,
    definition: Any = None,
    trusted: Iterable[str] = (),
    extra_modules: Iterable[str] | None = None,
) -> None:
    """Check a model format (:class:`strataml.models.ModelFormat`) on one fitted model.

    ``fitted`` is a fitted estimator the format claims (or, for a format that saves no
    estimator, such as ONNX, the bytes of a file in it); ``rows`` are records to predict;
    ``signature`` is ``{"inputs": [{"name", "type"}...], "output": {"kind", "classes"}}``.
    ``definition`` is the unfitted estimator a weights-only format rebuilds the model
    from; ``trusted`` the types its file may name; ``extra_modules`` the modules whose
    absence the format reports as its missing extra (default: the extra's name).

    Covers canonical dumps, a dump → verify → load round trip that predicts
    byte-identically, refusal of files that are not the format's and of pickles (bare or
    zipped), the missing extra named with its pip command, the optional fast row predictor answering
    like the matrix predictor, and the optional ONNX export predicting like the model.
    """
    case = _FormatCase(fmt, fitted, list(rows), dict(signature), definition, list(trusted),
                       tuple(extra_modules if extra_modules is not None else ([fmt.extra] if fmt.extra else [])))
    for check in MODEL_FORMAT_CHECKS:
        try:
            check(case)
        except AssertionError as exc:
            raise AssertionError(f"model format {fmt.name!r}: {check.__name__}: {exc}") from exc
