"""Gold answer parsing, ATHENA's accuracy rule and the strict check."""
from fractions import Fraction

import pytest

from acbench.mwp.answer import athena_correct, parse_gold_answer, parse_remainder, strict_correct
from acbench.mwp.errors import LiteralError


@pytest.mark.parametrize(
    "answer, value",
    [
        ("20", 20),
        ("0.5", Fraction(1, 2)),
        ("-410.0", -410),
        ("50%", Fraction(1, 2)),
        ("12.5%", Fraction(1, 8)),
        ("((1)/(2))", Fraction(1, 2)),
        ("((3200)/(3))", Fraction(3200, 3)),
        ("3(1/2)", Fraction(7, 2)),
        ("1((19)/(25))", Fraction(44, 25)),
        ("12 (marbles)", 12),
        ("19 (paper bags)", 19),
        ("5 (school-buses)", 5),
        ("3.333 (minutes)", Fraction(3333, 1000)),
        ("12 ", 12),
        ("15 r8", 15),
        ("$3.50", Fraction(7, 2)),
        ("$1,200", 1200),
        ("3/4", Fraction(3, 4)),
    ],
)
def test_parse_gold_answer(answer, value):
    assert parse_gold_answer(answer) == value


@pytest.mark.parametrize("answer", ["", "marbles", "(marbles)", "1/0", "x=3"])
def test_parse_gold_answer_rejects(answer):
    with pytest.raises(LiteralError):
        parse_gold_answer(answer)


def test_parse_remainder():
    assert parse_remainder("15 r8") == (15, 8)
    assert parse_remainder(" 9 r 10 ") == (9, 10)
    assert parse_remainder("15") is None


@pytest.mark.parametrize(
    "pred, gold, correct",
    [
        (0.33, 0.333, True),  # n = 2
        ("0.333", "0.33", True),
        (19.6, "20", True),  # "20" has no decimal point: tolerance 1
        ("19.01", "20", True),
        ("21", "20", False),  # |diff| = 1 is not < 1
        (20, 20.4, True),  # int 20 -> "20": tolerance 1
        (19.6, 20.0, False),  # str(20.0) == "20.0": n = 1, as in ATHENA's float pipeline
        (0.5, 0.7, False),
        (0.5, 0.6, True),  # ATHENA's float quirk: 0.6 - 0.5 == 0.09999999999999998 < 0.1
        (0.33, 0.34, False),  # while 0.34 - 0.33 == 0.010000000000000009 is not < 0.01
        (1 / 3, "0.3333", True),  # n = 4
        (1 / 3, "0.33334", True),  # n capped at 4
        (0.12345, "0.12365", False),
        (Fraction(1, 3), 0.333, True),  # Fraction -> float 0.3333333333333333
        ("50%", 0.5, True),  # parsed, then the float 0.5
        ("12 (marbles)", 12.0, True),
        (None, 1, False),
        ("garbage", 1, False),
        (float("nan"), 1.0, False),
    ],
)
def test_athena_correct(pred, gold, correct):
    assert athena_correct(pred, gold) is correct


@pytest.mark.parametrize(
    "pred, gold, correct",
    [
        (Fraction(1, 2), "50%", True),
        (Fraction(180), "180", True),
        (Fraction(1, 3), "0.333", False),
        (Fraction(1, 3), "((1)/(3))", True),
        (1 / 3, Fraction(1, 3), True),  # float error far below 1e-4 relative
        (100.009, "100", True),
        (100.011, "100", False),
        (Fraction(1, 10**6), "0", True),
        (Fraction(1, 1000), "0", False),
        (Fraction(7, 2), "3(1/2)", True),
        (None, "1", False),
        (float("inf"), "1", False),
    ],
)
def test_strict_correct(pred, gold, correct):
    assert strict_correct(pred, gold) is correct


def test_strict_correct_rel():
    assert strict_correct(Fraction(1, 3), "0.333", rel=1e-2)
