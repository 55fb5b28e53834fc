"""Gold-check rules on synthetic records (no data needed)."""
from fractions import Fraction

import pytest

from acbench.mwp.gold_check import GoldRecord, check_record, exceptions, reason_category, render_exceptions


@pytest.mark.parametrize(
    "equation, answer, reason",
    [
        ("x=(11-1)*2", "20", None),
        ("5+7=12", "12 (marbles)", None),
        ("x=1/3", "((1)/(3))", None),
        ("x=(1/2)", "50%", None),
        ("x=80千米/小时", "80", "equation does not parse: unexpected character '千' at 2 in '80千米/小时'"),
        ("x=(1+2", "3", "equation does not parse: expected ')' at token 4, found end of expression"),
        ("x=1/(2-2)", "1", "equation does not evaluate: division by zero (1 / 0)"),
        ("x=1+1", "two", "gold answer does not parse: 'two'"),
        ("248/16=15 r8", "16 (days)", "remainder answer: formula gives quotient 15 remainder 8; gold is the quotient + 1"),
        ("26/3=8 r2", "8 (rooms)", "remainder answer: formula gives quotient 8 remainder 2; gold is the quotient"),
        ("x=10/3", "3.333", "gold answer rounded to 3 decimals"),
        ("x=2/3", "0.666", "gold answer truncated to 3 decimals"),
        ("x=295/3", "98", "gold answer rounded to an integer"),
        ("x=10/3", "4", "gold answer rounded up to an integer"),
        ("x=8/3", "2", "gold answer rounded down to an integer"),
        ("x=1/8", "12.5", "gold answer is the value times 100 (percent slip)"),
        ("x=(15+25+20+16+11)/10", "21", "equation evaluates to 8.7, gold 21"),
        ("x=1/7", "5", "equation evaluates to (1/7), gold 5"),
    ],
)
def test_check_record_reasons(equation, answer, reason):
    assert check_record(GoldRecord("math23k", "1", equation, answer)).reason == reason


def test_exceptions_order_and_fields():
    records = [
        GoldRecord("asdiv_a", "nluds-0010", "1+1=3", "3"),
        GoldRecord("math23k", "100", "x=1/0", "1"),
        GoldRecord("math23k", "20", "x=2", "3"),
        GoldRecord("math23k", "3", "x=2", "2"),
        GoldRecord("asdiv_a", "nluds-0002", "1+1=3", "3"),
    ]
    entries = exceptions([check_record(r) for r in records])
    assert [(e["dataset"], e["id"]) for e in entries] == [
        ("math23k", "20"), ("math23k", "100"), ("asdiv_a", "nluds-0002"), ("asdiv_a", "nluds-0010"),
    ]
    assert entries[1]["evaluated"] is None and entries[0]["evaluated"] == "2"
    text = render_exceptions(entries)
    assert text.startswith("# ") and "--write" in text
    assert check_record(records[3]).evaluated == Fraction(2)
    assert reason_category(entries[0]["reason"]) == "equation evaluates to"
