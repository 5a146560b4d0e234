import pytest

import strataml as st
from strataml.data import breaking_changes
from strataml.errors import ContractError, UnsafePath

from .conftest import contract


def test_version_is_a_stable_hash_of_the_definition() -> None:
    assert contract().version == contract().version
    assert len(contract().version) == 16
    changed = contract(rules={"refund_le_amount": "refund < amount"})
    assert changed.version != contract().version
    assert st.Contract.from_dict(contract().to_dict()).version == contract().version


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": [st.Column("a", "string")], "key": "b"}, "key column 'b' is not a declared column"),
        ({"columns": [st.Column("a", "string")], "timestamp": "a"}, "must have type timestamp or date"),
        ({"columns": [st.Column("a", "string"), st.Column("a", "int")]}, "twice"),
        ({"columns": []}, "declares no columns"),
        ({"columns": [st.Column("a", "int")], "rules": {"bad name": "a > 0"}}, "must be an identifier"),
        ({"columns": [st.Column("a", "int")], "rules": {"r": "a > 0; DROP TABLE x"}}, "one expression"),
        ({"columns": [st.Column("a", "int")], "extra_columns": "keep"}, "extra_columns"),
    ],
)
def test_invalid_contracts_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        st.Contract("c", **kwargs)


@pytest.mark.parametrize(
    ("col", "message"),
    [
        (lambda: st.Column("a", "varchar"), "unknown type 'varchar'"),
        (lambda: st.Column("a", "string", min=1), "min/max apply to"),
        (lambda: st.Column("a", "int", pattern="x"), "pattern applies to string"),
        (lambda: st.Column("a", "string", pattern="("), "not a valid regular expression"),
        (lambda: st.Column("a", "string", allowed=[]), "non-empty list"),
        (lambda: st.Column("a", "string", max_null_rate=2), "between 0 and 1"),
        (lambda: st.Column("_a", "string"), "not starting with '_'"),
    ],
)
def test_invalid_columns_are_refused(col, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ContractError, match=message):
        col()


def test_unsafe_contract_name_is_refused() -> None:
    with pytest.raises(UnsafePath):
        st.Contract("../etc", columns=[st.Column("a", "int")])


def test_breaking_changes() -> None:
    old = contract()
    added_nullable = contract(columns=[*old.columns, st.Column("channel", "string", nullable=True)])
    assert breaking_changes(old, added_nullable) == []
    removed = contract(columns=[c for c in old.columns if c.name != "merchant"])
    assert breaking_changes(old, removed) == ["column 'merchant' was removed"]
    retyped = contract(columns=[st.Column("amount", "int") if c.name == "amount" else c for c in old.columns])
    assert breaking_changes(old, retyped) == ["column 'amount' changed type float → int"]
    required = contract(columns=[*old.columns, st.Column("channel", "string")])
    assert breaking_changes(old, required) == ["column 'channel' was added without nullable=True"]
