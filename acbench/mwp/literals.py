"""Numeric literals: recognise and parse one number written as in Math23k / ASDiv-A, exactly.

Accepted forms (all unsigned): integers ``12``, thousands separators ``1,200``, decimals ``3.5``,
percentages ``20%`` / ``3.5％`` (value / 100), fractions ``(1/6)`` or ``1/6``, mixed numbers
``3(1/2)`` (= 3 + 1/2; the datasets never write implicit multiplication this way), and the
Math23k answer spellings ``((1)/(2))`` and ``1((19)/(25))``.
"""
from __future__ import annotations

import re
from fractions import Fraction

from acbench.mwp.errors import LiteralError

_DEC = r"\d+(?:\.\d+)?"
_INT_OR_SEP = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PAREN_INT = r"(?:\d+|\(\d+\))"

DECIMAL_RE = re.compile(rf"(?:{_INT_OR_SEP})[%％]?")
FRACTION_RE = re.compile(rf"\(({_PAREN_INT})/({_PAREN_INT})\)|(\d+)/(\d+)")
MIXED_RE = re.compile(rf"(\d+)\(({_PAREN_INT})/({_PAREN_INT})\)")


def _int(part: str) -> int:
    return int(part.strip("()"))


def _fraction(num: str, den: str, text: str) -> Fraction:
    if _int(den) == 0:
        raise LiteralError(f"zero denominator in {text!r}")
    return Fraction(_int(num), _int(den))


def parse_number(text: str) -> Fraction:
    """Exact value of one literal (see module docstring); raises ``LiteralError`` otherwise."""
    s = text.strip()
    m = MIXED_RE.fullmatch(s)
    if m:
        return int(m.group(1)) + _fraction(m.group(2), m.group(3), s)
    m = FRACTION_RE.fullmatch(s)
    if m:
        num, den = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return _fraction(num, den, s)
    if DECIMAL_RE.fullmatch(s):
        percent = s[-1] in "%％"
        value = Fraction(s.rstrip("%％").replace(",", ""))
        return value / 100 if percent else value
    raise LiteralError(f"not a number literal: {text!r}")


def is_number(text: str) -> bool:
    """True when ``parse_number`` accepts ``text``."""
    try:
        parse_number(text)
    except LiteralError:
        return False
    return True


def format_number(value: Fraction | int) -> str:
    """Canonical literal for an exact value: ``12``, ``3.14``, ``-0.5`` or ``(1/3)``.

    Terminating decimals are written as decimals, other rationals as a parenthesised fraction;
    ``parse_number(format_number(v)) == v`` for every non-negative v.
    """
    v = Fraction(value)
    sign, v = ("-", -v) if v < 0 else ("", v)
    if v.denominator == 1:
        return f"{sign}{v.numerator}"
    den, twos, fives = v.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return f"{sign}({v.numerator}/{v.denominator})"
    places = max(twos, fives)
    scaled = v.numerator * 10**places // v.denominator
    digits = str(scaled).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"
