"""Tokenizer, parser and infix <-> prefix conversion (minimal parentheses, round trips)."""
import random
from fractions import Fraction

import pytest

from acbench.mwp.errors import ExpressionError
from acbench.mwp.evaluate import evaluate, evaluate_prefix
from acbench.mwp.notation import (
    expression_of,
    infix_to_prefix,
    parse_infix,
    parse_prefix,
    prefix_to_infix,
    tokenize,
    tree_to_infix,
    tree_to_prefix,
)


def test_tokenize_literals_slots_and_brackets():
    assert tokenize("3(1/2)+(1/6)*20%-[N0^2]/3.14") == [
        "3(1/2)", "+", "(1/6)", "*", "20%", "-", "(", "N0", "^", "2", ")", "/", "3.14",
    ]
    assert tokenize(" 1 - (2 ** 3) ") == ["1", "-", "(", "2", "^", "3", ")"]
    assert tokenize("3*(1/2)") == ["3", "*", "(1/2)"]


@pytest.mark.parametrize("bad", ["2+a", "3 $ 4", "80千米/小时"])
def test_tokenize_rejects_other_characters(bad):
    with pytest.raises(ExpressionError, match="unexpected character"):
        tokenize(bad)


@pytest.mark.parametrize("bad", ["", "1+", "(1+2", "1+2)", "*3", "1 2", "()", "(1/6)0"])
def test_parse_infix_rejects_malformed(bad):
    with pytest.raises(ExpressionError):
        parse_infix(bad)


def test_expression_of():
    assert expression_of("x=(11-1)*2") == "(11-1)*2"
    assert expression_of("5+7=12") == "5+7"
    assert expression_of("248/16=15 r8") == "248/16"
    assert expression_of("1+2") == "1+2"


@pytest.mark.parametrize(
    "infix, prefix",
    [
        ("1+2*3", ["+", "1", "*", "2", "3"]),
        ("(1+2)*3", ["*", "+", "1", "2", "3"]),
        ("1-2-3", ["-", "-", "1", "2", "3"]),
        ("1-(2-3)", ["-", "1", "-", "2", "3"]),
        ("2^3^2", ["^", "2", "^", "3", "2"]),
        ("-2^2", ["neg", "^", "2", "2"]),
        ("N0/(N1+1)", ["/", "N0", "+", "N1", "1"]),
    ],
)
def test_infix_to_prefix(infix, prefix):
    assert infix_to_prefix(infix) == prefix
    assert "".join(prefix_to_infix(prefix)) == infix


@pytest.mark.parametrize(
    "prefix, infix",
    [
        (["*", "+", "N0", "N1", "N2"], "(N0+N1)*N2"),
        (["+", "N0", "*", "N1", "N2"], "N0+N1*N2"),
        (["/", "N0", "/", "N1", "N2"], "N0/(N1/N2)"),
        (["/", "/", "N0", "N1", "N2"], "N0/N1/N2"),
        (["+", "N0", "+", "N1", "N2"], "N0+(N1+N2)"),
        (["^", "^", "2", "3", "2"], "(2^3)^2"),
        (["*", "N0", "neg", "N1"], "N0*(-N1)"),
        (["^", "neg", "2", "2"], "(-2)^2"),
        (["neg", "+", "1", "2"], "-(1+2)"),
        (["neg", "neg", "1"], "-(-1)"),
        (["-", "1", "neg", "(1/2)"], "1-(-(1/2))"),
    ],
)
def test_prefix_to_infix_minimal_parentheses(prefix, infix):
    assert "".join(prefix_to_infix(prefix)) == infix
    assert infix_to_prefix(infix) == prefix


@pytest.mark.parametrize("bad", [[], ["+", "1"], ["1", "2"], ["neg"], ["(", "1", ")"]])
def test_parse_prefix_rejects_malformed(bad):
    with pytest.raises(ExpressionError):
        parse_prefix(bad)


def _random_tree(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(["N0", "N1", "N2", "1", "3.14", "(1/6)", "20%", "3(1/2)"])
    if rng.random() < 0.1:
        return ("neg", _random_tree(rng, depth - 1))
    op = rng.choice(["+", "-", "*", "/", "+", "-", "*", "/", "^"])
    if op == "^":
        return ("^", _random_tree(rng, depth - 1), rng.choice(["2", "3", "0"]))
    return (op, _random_tree(rng, depth - 1), _random_tree(rng, depth - 1))


def test_round_trip_random_trees():
    rng = random.Random(0)
    slots = [Fraction(7, 3), Fraction(-5), Fraction(11, 4)]
    for _ in range(500):
        tree = _random_tree(rng, 5)
        prefix = tree_to_prefix(tree)
        infix = tree_to_infix(tree)
        assert parse_prefix(prefix) == tree
        assert parse_infix(infix) == tree
        assert parse_infix("".join(infix)) == tree
        assert infix_to_prefix(prefix_to_infix(prefix)) == prefix
        try:
            value = evaluate(infix, slots)
        except ExpressionError:
            with pytest.raises(ExpressionError):
                evaluate_prefix(prefix, slots)
            continue
        assert evaluate_prefix(prefix, slots) == value
        assert evaluate(prefix_to_infix(infix_to_prefix(infix)), slots) == value
