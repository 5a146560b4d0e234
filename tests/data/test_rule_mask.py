"""Rule names are the same whether a contract has few rules or more than one row mask holds."""

from __future__ import annotations

import pytest

from strataml.data import ingest, quarantine_rows
from strataml.data.validate import _MASK_BITS

from .conftest import contract


@pytest.mark.parametrize("n_rules", [_MASK_BITS - 13, _MASK_BITS + 5])
def test_every_broken_rule_is_named_with_many_rules(workspace, write, n_rules: int) -> None:
    # rule r<i> is broken by an amount below i; the columns add 13 checks, so the first case fills the mask exactly
    rules = {f"r{i:03d}": f"amount >= {i}" for i in range(n_rules)}
    c = contract(rules=rules)
    path = write("a.csv", f"tx1,u1,{n_rules},,US,m1,2026-01-01", "tx2,u1,3,,US,m1,2026-01-01", "tx3,u1,-1,,XX,m1,2026-01-01")
    r = ingest(workspace, path, contract=c)
    assert (r.rows_read, r.accepted, r.rejected) == (3, 1, 2)
    rows = {q["tx_id"]: q for q in quarantine_rows(workspace, "transactions@v1")}
    assert sorted(rows["tx2"]["_errors"]) == [f"r{i:03d}" for i in range(4, n_rules)]
    assert sorted(rows["tx3"]["_errors"]) == sorted(["amount.min", "country.allowed", *rules])
    assert r.rejected_by_rule[f"r{n_rules - 1:03d}"] == 2
