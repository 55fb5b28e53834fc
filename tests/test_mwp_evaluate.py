"""Exact evaluation: literals, precedence, unary minus, power, errors, prefix with slots."""
from fractions import Fraction

import pytest

from acbench.mwp.errors import ExpressionError
from acbench.mwp.evaluate import evaluate, evaluate_prefix


@pytest.mark.parametrize(
    "expression, value",
    [
        ("1+2*3", 7),
        ("(1+2)*3", 9),
        ("8/4/2", 1),
        ("8-4-2", 2),
        ("2^3^2", 512),
        ("-2^2", -4),
        ("(-2)^2", 4),
        ("2^-1", Fraction(1, 2)),
        ("2*-3", -6),
        ("1-(-(1/2))", Fraction(3, 2)),
        ("--3", 3),
        ("+3", 3),
        ("150%*24", 36),
        ("1-(1/6)-(1/4)", Fraction(7, 12)),
        ("3(1/2)*2", 7),
        ("3*(1/2)", Fraction(3, 2)),
        ("0.1+0.2", Fraction(3, 10)),
        ("[490-50*(4+1)]/4", 60),
        ("3.14*2^2", Fraction(1256, 100)),
        ("(24+24*150%)/(1-(1/6)-(1/6)*150%-(1/4))", 180),
        ("0^0", 1),
    ],
)
def test_evaluate(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression, message",
    [
        ("1/0", "division by zero"),
        ("1/(2-2)", "division by zero"),
        ("0^-1", "division by zero"),
        ("2^(1/2)", "non-integer exponent"),
        ("2^0.5", "non-integer exponent"),
        ("2^100", "exceeds the limit"),
        ("1000000000000000000000000000000^60", "too large"),
        ("1+", "unexpected end"),
        ("(1+2", r"expected '\)'"),
        ("1 2", "unexpected token"),
        ("N3+1", "no value for slot N3"),
        ("((" * 2000 + "1" + "))" * 2000, "nested too deeply"),
    ],
)
def test_evaluate_errors(expression, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(expression)


def test_evaluate_slots():
    assert evaluate("N0*(N1-1)", ["20%", 6]) == 1
    assert evaluate(["N0", "/", "N1"], [Fraction(1, 3), 2]) == Fraction(1, 6)


def test_evaluate_prefix():
    slots = ["24", "150%", "(1/6)", "(1/4)"]
    tokens = ["/", "+", "N0", "*", "N0", "N1", "-", "-", "-", "1", "N2", "*", "N2", "N1", "N3"]
    assert evaluate_prefix(tokens, slots) == 180
    assert evaluate_prefix(["neg", "^", "N0", "2"], [3]) == -9
    assert evaluate_prefix(["3.14"]) == Fraction(157, 50)


@pytest.mark.parametrize(
    "tokens, message",
    [
        (["/", "1", "0"], "division by zero"),
        (["+", "1"], "lacks operands"),
        (["1", "2"], "leaves 2 operands"),
        ([], "empty"),
        (["+", "N0", "N1"], "no value for slot N1"),
        (["+", "1", "x"], "not a number literal"),
    ],
)
def test_evaluate_prefix_errors(tokens, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate_prefix(tokens, ["1"])
