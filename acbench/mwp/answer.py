"""Gold answers: parsing (Math23k, ASDiv-A) and the two correctness checks.

``athena_correct`` reproduces ATHENA's accuracy rule (the number the paper reports);
``strict_correct`` is a tight relative check used to audit the evaluator and the gold data.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Union

from acbench.mwp.errors import ExpressionError, LiteralError
from acbench.mwp.literals import parse_number

Value = Union[Fraction, int, float, str]

_UNIT_RE = re.compile(r"\s*\([^()]*[^\W\d_][^()]*\)\s*$")  # "(marbles)", "(paper bags)"
_REMAINDER_RE = re.compile(r"(\d+)\s*r\s*(\d+)")
_PLAIN_FLOAT_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_remainder(answer: str) -> tuple[int, int] | None:
    """``"15 r8" -> (15, 8)`` (quotient, remainder of an integer division); None otherwise."""
    m = _REMAINDER_RE.fullmatch(answer.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_gold_answer(answer: str) -> Fraction:
    """Exact value of a gold answer string.

    Math23k: ``"20"``, ``"0.5"``, ``"-410.0"``, ``"50%"`` (= 1/2), ``"((1)/(2))"``,
    ``"3(1/2)"`` / ``"1((19)/(25))"`` (mixed numbers). ASDiv-A: a trailing unit in parentheses is
    dropped (``"12 (marbles)"``), as are ``$`` and thousands separators (``"$1,200.50"``); bare
    fractions ``"3/4"`` are read as fractions.

    A remainder answer ``"15 r8"`` (ASDiv writes integer division as quotient and remainder)
    means quotient 15, remainder 8, and is scored as its quotient, 15. In the ASDiv-A files such
    strings occur only on the right of ``Formula`` (``"248/16=15 r8"``); the ``Answer`` field then
    holds the integer the question asks for, the quotient or the quotient + 1 ("how many days"
    rounds up), and that integer is the gold answer. Raises ``LiteralError`` if nothing parses.
    """
    s = _UNIT_RE.sub("", answer.strip()).strip()
    remainder = parse_remainder(s)
    if remainder is not None:
        return Fraction(remainder[0])
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("-+").lstrip("$").strip()
    try:
        return sign * parse_number(s)
    except LiteralError:
        raise LiteralError(f"gold answer does not parse: {answer!r}") from None


def _exact(x: Value) -> Fraction:
    return parse_gold_answer(x) if isinstance(x, str) else Fraction(x)


def strict_correct(pred: Value | None, gold: Value, rel: float = 1e-4) -> bool:
    """|pred - gold| <= rel * |gold| (absolute ``rel`` when gold is 0), in exact arithmetic.

    Strings are read with ``parse_gold_answer``, floats exactly. ``None`` or an unparsable
    prediction is wrong.
    """
    if pred is None:
        return False
    try:
        p, g = _exact(pred), _exact(gold)
    except (ExpressionError, ValueError, OverflowError):  # NaN/inf floats, garbage strings
        return False
    bound = Fraction(rel) * (abs(g) if g != 0 else 1)
    return abs(p - g) <= bound


def _athena_form(x: Value) -> tuple[float, str]:
    """The (value, string form) ATHENA compares: Python ints keep ``str(int)``, every other
    number becomes a Python float; plain numeral strings are used as written, other strings
    (``"50%"``, ``"12 (marbles)"``) are parsed and then treated as that float."""
    if isinstance(x, str):
        s = x.strip()
        if _PLAIN_FLOAT_RE.fullmatch(s):
            return float(s), s
        x = float(parse_gold_answer(s))
    if isinstance(x, int) and not isinstance(x, bool):
        return x, str(x)
    f = float(x)
    return f, str(f)


def _athena_decimals(s: str) -> int:
    return len(s[s.find("."):]) - 1  # ATHENA's expression: 0 when s has no "."


def athena_correct(pred: Value | None, gold: Value) -> bool:
    """ATHENA's ``LitAthena.measure_answer``: |pred - gold| < 10^(-n), where n is the smaller
    of the two decimal counts of the string forms (capped at 4). ``None`` is wrong.

    Quirks, reproduced on purpose: the tolerance comes from how the numbers are *written*,
    not from their size. A form without a decimal point counts 0 decimals, so the tolerance is
    1: 19.6 vs ``"20"`` is correct, and so is 19.01. In ATHENA both values are Python floats,
    whose ``str`` always has a decimal point (``str(20.0) == "20.0"``, so n >= 1 there and 19.6
    vs 20.0 is wrong); pass strings or ints to get the no-decimal case, floats to get ATHENA's
    float behaviour. The less precise side sets n: 0.33 vs 0.333 is correct (n = 2). Forms in
    scientific notation (``"1e-05"``) have no decimal point, so n = 0 for them. The comparison
    is in floats with a strict ``<``, so a difference of exactly one unit is decided by rounding
    error: 0.5 vs 0.6 is correct (0.6 - 0.5 == 0.09999999999999998 < 0.1), 0.33 vs 0.34 is not
    (0.34 - 0.33 == 0.010000000000000009).
    """
    if pred is None:
        return False
    try:
        (p, ps), (g, gs) = _athena_form(pred), _athena_form(gold)
    except (ExpressionError, ValueError, OverflowError):
        return False
    n = min(_athena_decimals(ps), _athena_decimals(gs), 4)
    return abs(p - g) < 10**-n
