"""Property-based fuzzing of the validator against a plain-Python reference."""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as strat

import strataml as st
from strataml.data import get_version, ingest, quarantine_rows

from .conftest import HEADER

COUNTRIES = ["US", "DE", "FR", "GB"]

amounts = strat.one_of(
    strat.floats(min_value=-1e6, max_value=1e7, allow_nan=False).map(lambda x: repr(round(x, 2))),
    strat.sampled_from(["", "nan", "inf", "-inf", "abc", "1,5", "1e500", "0", "-0.0"]),
)
texts = strat.text(alphabet=strat.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
rows = strat.lists(
    strat.tuples(
        strat.integers(0, 30).map(lambda i: f"tx{i}") | strat.sampled_from(["", "bad", "tx"]),
        texts,
        amounts,
        strat.sampled_from([*COUNTRIES, "XX", "", "us"]),
        strat.sampled_from(["", "m1", "m,2", 'm"3', "ünï"]),
        strat.sampled_from(["2026-01-01", "2026-01-01T12:00:00Z", "2026-13-01", "", "yesterday"]),
    ),
    max_size=40,
)


def _float(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _reference_errors(r: tuple[str, str, str, str, str, str]) -> set[str]:
    tx, user, amount, country, _merchant, ts = r
    errs = set()
    if not tx:
        errs.add("tx_id.nullable")
    elif not (tx.startswith("tx") and tx[2:].isdigit()):
        errs.add("tx_id.pattern")
    if user == "":
        errs.add("user_id.nullable")
    if amount == "":
        errs.add("amount.nullable")
    elif _float(amount) is None:
        errs.add("amount.type")
    else:
        v = _float(amount)
        assert v is not None
        if v < 0:
            errs.add("amount.min")
        if v > 1_000_000:
            errs.add("amount.max")
    if country == "":
        errs.add("country.nullable")
    elif country not in COUNTRIES:
        errs.add("country.allowed")
    if ts == "":
        errs.add("ts.nullable")
    elif ts in ("2026-13-01", "yesterday"):
        errs.add("ts.type")
    return errs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_validator_matches_reference(data: list[tuple[str, str, str, str, str, str]]) -> None:
    from .conftest import contract

    with tempfile.TemporaryDirectory() as tmp:
        ws = st.Workspace.init(Path(tmp) / "ws")
        path = Path(tmp) / "f.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER.split(","))
            for tx, user, amount, country, merchant, ts in data:
                w.writerow([tx, user, amount, "", country, merchant, ts])
        c = contract(columns=[col if col.name != "merchant" else st.Column("merchant", "string", nullable=True) for col in contract().columns])
        if not data:
            return
        r = ingest(ws, str(path), contract=c)
        assert r.accepted + r.rejected + r.duplicates == r.rows_read == len(data)

        expected_errors = [_reference_errors(row) for row in data]
        seen: set[str] = set()
        expected_accepted = []
        for row, errs in zip(data, expected_errors, strict=True):
            if not errs and row[0] not in seen:
                seen.add(row[0])
                expected_accepted.append(row[0])
        assert r.accepted == len(expected_accepted)
        if r.version:
            got = get_version(ws, "transactions").to_pandas()["tx_id"].tolist()
            assert sorted(got) == sorted(expected_accepted)
        quarantined = quarantine_rows(ws, "transactions")
        got = sorted((q["tx_id"] or "", q["user_id"] or "", q["country"] or "", tuple(sorted(q["_errors"])))
                     for q in quarantined if "tx_id.duplicate" not in q["_errors"])
        want = sorted((row[0], row[1], row[3], tuple(sorted(errs))) for row, errs in zip(data, expected_errors, strict=True) if errs)
        assert got == want
        ws.close()
