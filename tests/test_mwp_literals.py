"""Numeric literals: parse_number and format_number on hand-computed cases."""
from fractions import Fraction

import pytest

from acbench.mwp.errors import ExpressionError, LiteralError
from acbench.mwp.literals import format_number, is_number, parse_number


@pytest.mark.parametrize(
    "text, value",
    [
        ("12", Fraction(12)),
        ("3.5", Fraction(7, 2)),
        ("20%", Fraction(1, 5)),
        ("12.5%", Fraction(1, 8)),
        ("20％", Fraction(1, 5)),
        ("(1/6)", Fraction(1, 6)),
        ("1/6", Fraction(1, 6)),
        ("3(1/2)", Fraction(7, 2)),
        ("((1)/(2))", Fraction(1, 2)),
        ("1((19)/(25))", Fraction(44, 25)),
        ("1,200", Fraction(1200)),
        ("65,899.5", Fraction(131799, 2)),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "(1/0)", "1,20", "-3", "3*(1/2)", "N0"])
def test_parse_number_rejects(text):
    with pytest.raises(LiteralError):
        parse_number(text)
    assert not is_number(text)
    assert issubclass(LiteralError, ExpressionError)


@pytest.mark.parametrize(
    "value, text",
    [(Fraction(12), "12"), (Fraction(157, 50), "3.14"), (Fraction(-1, 2), "-0.5"), (Fraction(1, 3), "(1/3)"),
     (Fraction(1, 80), "0.0125"), (Fraction(0), "0")],
)
def test_format_number(value, text):
    assert format_number(value) == text
    if value >= 0:
        assert parse_number(text) == value
