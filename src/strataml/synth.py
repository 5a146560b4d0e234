"""Synthetic data for the demo, the tests and the benchmarks: realistic card
transactions with a known share of broken rows, generated without any download.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

COUNTRIES = np.array(["US", "DE", "FR", "GB"])
MERCHANTS = np.array([f"m{i:03d}" for i in range(200)])


def transactions(
    n: int,
    *,
    seed: int = 0,
    start_id: int = 0,
    users: int = 1000,
    bad_fraction: float = 0.001,
    start: dt.datetime = dt.datetime(2026, 1, 1),
    days: float = 60.0,
) -> pa.Table:
    """``n`` transactions as text columns (as a CSV export would hold them).

    About ``bad_fraction`` of the rows break one rule each: negative or unparsable
    amounts, unknown countries, a refund above the amount, a missing user.
    """
    rng = np.random.default_rng(seed)
    ids = np.char.add("tx", (np.arange(n) + start_id).astype(str))
    user = np.char.add("u", rng.integers(0, users, n).astype(str))
    amount = np.round(rng.lognormal(3.0, 1.0, n), 2)
    refund = np.where(rng.random(n) < 0.05, np.round(amount * rng.random(n), 2), np.nan)
    country = COUNTRIES[rng.integers(0, len(COUNTRIES), n)]
    merchant = MERCHANTS[rng.integers(0, len(MERCHANTS), n)].astype(object)
    merchant[rng.random(n) < 0.01] = None
    offsets = np.sort(rng.random(n)) * days * 86400
    ts = (np.datetime64(start, "s") + offsets.astype("timedelta64[s]")).astype("datetime64[s]").astype(str)

    amount_s = amount.astype(str).astype(object)
    refund_s = refund.astype(str).astype(object)
    refund_s[np.isnan(refund)] = None
    country_s = country.astype(object)
    user_s = user.astype(object)
    bad = np.flatnonzero(rng.random(n) < bad_fraction)
    kinds = rng.integers(0, 5, len(bad))
    for i, k in zip(bad, kinds, strict=True):
        if k == 0:
            amount_s[i] = str(-amount[i])
        elif k == 1:
            amount_s[i] = "n/a"
        elif k == 2:
            country_s[i] = "XX"
        elif k == 3:
            refund_s[i] = str(round(amount[i] * 2 + 1, 2))
        else:
            user_s[i] = None
    return pa.table({
        "tx_id": pa.array(ids, pa.string()),
        "user_id": pa.array(user_s, pa.string()),
        "amount": pa.array(amount_s, pa.string()),
        "refund": pa.array(refund_s, pa.string()),
        "country": pa.array(country_s, pa.string()),
        "merchant": pa.array(merchant, pa.string()),
        "ts": pa.array(ts, pa.string()),
    })


def write_csv(table: pa.Table, path: str | Path) -> Path:
    """Write a table as a CSV file with a header (nulls as empty fields)."""
    path = Path(path)
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    return path
