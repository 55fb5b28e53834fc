"""Numbers in problem text: finding, masking to slots ``N0, N1, ...``, and mapping gold
equations onto those slots and a constant list derived from training equations.

Recognised in text (Chinese and English): integers, decimals, thousands separators ``1,200``,
percentages ``20%`` / ``20％``, fractions ``(1/6)`` and mixed numbers ``3(1/2)`` (Math23k
spelling), and bare fractions ``3/4`` when ``bare_fractions=True``. Bare ``a/b`` is off by
default because Math23k writes every fraction in parentheses and uses bare ``a/b`` for
division ("320-168/6的商"). English cardinal words (``seven``, ``twenty-five``) are numbers
when ``words=True`` (ASDiv-A spells many small numbers out; Math23k never does).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

from acbench.mwp.errors import ExpressionError
from acbench.mwp.literals import FRACTION_RE, MIXED_RE, format_number, parse_number
from acbench.mwp.notation import expression_of, is_operand, slot_index, tokenize

_PLAIN = r"(?:\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+)(?:\.\d+)?[%％]?"
_PAREN = r"\d*\(\d+/\d+\)"
_TEXT_RE = re.compile(rf"(?<!\d)(?:{_PAREN}|{_PLAIN})")
_TEXT_BARE_RE = re.compile(rf"(?<!\d)(?:{_PAREN}|\d+/\d+(?![\d.])|{_PLAIN})")
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
WORD_VALUES = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_WORD_RE = re.compile(
    rf"\b(?:(?:{'|'.join(_TENS)})(?:-(?:{'|'.join(_UNITS[1:10])}))?|{'|'.join(_UNITS)})\b", re.IGNORECASE
)


class SlotError(ExpressionError):
    """An equation number matches neither a text number nor a constant."""


@dataclass(frozen=True)
class TextNumber:
    """One number found in text: its spelling, exact value and character span."""

    text: str
    value: Fraction
    start: int
    end: int


def word_value(word: str) -> int:
    """Value of an English cardinal word such as ``"Twenty-five"``."""
    return sum(WORD_VALUES[w] for w in word.lower().split("-"))


def find_numbers(text: str, bare_fractions: bool = False, words: bool = False) -> list[TextNumber]:
    """All numbers of ``text`` in order of appearance."""
    pattern = _TEXT_BARE_RE if bare_fractions else _TEXT_RE
    found = []
    for m in pattern.finditer(text):
        try:
            value = parse_number(m.group())
        except ExpressionError:  # e.g. a zero denominator "(1/0)": not a number
            continue
        found.append(TextNumber(m.group(), value, m.start(), m.end()))
    if words:
        found += [TextNumber(m.group(), Fraction(word_value(m.group())), m.start(), m.end()) for m in _WORD_RE.finditer(text)]
        found.sort(key=lambda n: n.start)
    return found


def number_value(number: str | Fraction | int) -> Fraction:
    """Exact value of a text-number spelling (literal or cardinal word) or of a number."""
    if not isinstance(number, str):
        return Fraction(number)
    if number.lower().split("-")[0] in WORD_VALUES:
        return Fraction(word_value(number))
    return parse_number(number)


def mask_numbers(text: str, bare_fractions: bool = False, words: bool = False) -> tuple[str, list[str]]:
    """Replace each number by ``N0, N1, ...``; returns the masked text and the spellings."""
    found = find_numbers(text, bare_fractions, words)
    parts, pos = [], 0
    for i, num in enumerate(found):
        parts += [text[pos:num.start], f"N{i}"]
        pos = num.end
    parts.append(text[pos:])
    return "".join(parts), [n.text for n in found]


def _split_literal(token: str) -> list[str] | None:
    """Tokens spelling out a fraction or mixed literal: ``(1/6)`` -> ``( 1 / 6 )``."""
    m = MIXED_RE.fullmatch(token)
    if m:
        whole, num, den = m.groups()
        return ["(", whole, "+", "(", num.strip("()"), "/", den.strip("()"), ")", ")"]
    m = FRACTION_RE.fullmatch(token)
    if m and m.group(1):
        return ["(", m.group(1).strip("()"), "/", m.group(2).strip("()"), ")"]
    return None


def equation_to_slots(
    expression: str,
    numbers: Sequence[str | Fraction | int],
    constants: Sequence[str] = (),
) -> list[str]:
    """Rewrite an infix gold expression (``"x="`` prefix allowed) over slots and constants.

    Each number literal becomes ``N<i>`` for the first text number of equal value, else the
    first constant of equal value (as spelled in ``constants``). A fraction or mixed literal
    matching neither is spelled out (``(1/6)`` -> ``( N0 / N1 )``) when its parts match.
    Raises ``SlotError`` naming the first token that matches nothing.
    """
    text_values = {}
    for i, n in enumerate(numbers):
        text_values.setdefault(number_value(n), f"N{i}")
    const_values = {}
    for c in constants:
        const_values.setdefault(parse_number(c), c)

    def lookup(tok: str) -> str | None:
        value = parse_number(tok)
        return text_values.get(value) or const_values.get(value)

    out = []
    for tok in tokenize(expression_of(expression)):
        if not is_operand(tok):
            out.append(tok)
            continue
        if slot_index(tok) is not None:
            raise SlotError(f"expression already contains slot {tok}")
        mapped = lookup(tok)
        if mapped is not None:
            out.append(mapped)
            continue
        parts = _split_literal(tok)
        if parts is None or any(is_operand(p) and lookup(p) is None for p in parts):
            raise SlotError(f"number {tok!r} is neither in the text nor a constant")
        out += [lookup(p) if is_operand(p) else p for p in parts]
    return out


def unmatched_values(expression: str, numbers: Sequence[str | Fraction | int]) -> list[Fraction]:
    """Values of the expression's literals absent from the text numbers (fraction and mixed
    literals are split into their parts first when the whole value is absent)."""
    text_values = {number_value(n) for n in numbers}
    missing = []
    for tok in tokenize(expression_of(expression)):
        if not is_operand(tok) or parse_number(tok) in text_values:
            continue
        parts = _split_literal(tok) or [tok]
        missing += [parse_number(p) for p in parts if is_operand(p) and parse_number(p) not in text_values]
    return missing


def derive_constants(
    problems: Iterable[tuple[str, str]],
    min_count: int = 1,
    bare_fractions: bool = False,
    words: bool = False,
) -> list[tuple[str, int]]:
    """Constants from training ``(text, equation)`` pairs: values used in an equation but absent
    from its text, as ``(canonical literal, number of problems using it)``, most used first
    (ties by value), keeping those used by at least ``min_count`` problems. Equations that do not
    tokenize are skipped."""
    counts: Counter[Fraction] = Counter()
    for text, equation in problems:
        numbers = [n.value for n in find_numbers(text, bare_fractions, words)]
        try:
            counts.update(set(unmatched_values(equation, numbers)))
        except ExpressionError:
            continue
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(format_number(v), c) for v, c in ranked if c >= min_count]
