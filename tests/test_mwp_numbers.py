"""Finding and masking numbers in text; gold equations over slots; derived constants."""
from fractions import Fraction

import pytest

from acbench.mwp.errors import ExpressionError
from acbench.mwp.numbers import SlotError, derive_constants, equation_to_slots, find_numbers, mask_numbers

M23K_TEXT = "小明看一本故事书，第一天看了全书的(1/6)，第二天看了24页，第3天看的页数是前两天看的总数的150%，这时还有全书的(1/4)没有看，那么这本书一共多少页．"


def test_mask_math23k_text():
    masked, numbers = mask_numbers(M23K_TEXT)
    assert numbers == ["(1/6)", "24", "3", "150%", "(1/4)"]
    assert masked.startswith("小明看一本故事书，第一天看了全书的N0，第二天看了N1页，第N2天")
    assert [n.value for n in find_numbers(M23K_TEXT)] == [Fraction(1, 6), 24, 3, Fraction(3, 2), Fraction(1, 4)]


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("共有1(5/6)吨，用去20％，还剩3.5吨", ["1(5/6)", "20％", "3.5"]),
        ("There were 3,409 pieces and 65,899 people.", ["3,409", "65,899"]),
        ("It cost $3.50. Then 5.", ["3.50", "5"]),
        ("A list 1,2,3 and 12,5", ["1", "2", "3", "12", "5"]),
        ("1,2345 and 1,234,567 and 1,234,5", ["1", "2345", "1,234,567", "1", "234", "5"]),
        ("320-168/6的商", ["320", "168", "6"]),
        ("no numbers here", []),
    ],
)
def test_find_numbers(text, numbers):
    assert [n.text for n in find_numbers(text)] == numbers


def test_bare_fractions_and_words():
    text = "Twenty-five kids ate 3/4 of seven pies and one cake."
    assert mask_numbers(text) == ("Twenty-five kids ate N0/N1 of seven pies and one cake.", ["3", "4"])
    masked, numbers = mask_numbers(text, bare_fractions=True, words=True)
    assert masked == "N0 kids ate N1 of N2 pies and N3 cake."
    assert numbers == ["Twenty-five", "3/4", "seven", "one"]
    assert [n.value for n in find_numbers(text, True, True)] == [25, Fraction(3, 4), 7, 1]


def test_equation_to_slots():
    _, numbers = mask_numbers(M23K_TEXT)
    slots = equation_to_slots("x=(24+24*150%)/(1-(1/6)-(1/6)*150%-(1/4))", numbers, ["1", "3.14"])
    assert slots == ["(", "N1", "+", "N1", "*", "N3", ")", "/", "(", "1", "-", "N0", "-", "N0", "*", "N3", "-", "N4", ")"]


def test_equation_to_slots_matches_values_not_spellings():
    assert equation_to_slots("x=0.5*[2+1]", ["50%", "2"], ["1"]) == ["N0", "*", "(", "N1", "+", "1", ")"]
    assert equation_to_slots("x=3.140*2", ["2"], ["3.14"]) == ["3.14", "*", "N0"]


def test_equation_to_slots_spells_out_fractions():
    assert equation_to_slots("x=(24/6)*2", ["24", "6", "2"]) == ["(", "N0", "/", "N1", ")", "*", "N2"]


def test_equation_to_slots_errors():
    with pytest.raises(SlotError, match="'7'"):
        equation_to_slots("x=7+1", ["1"], [])
    with pytest.raises(ExpressionError):
        equation_to_slots("x=80千米", ["80"], [])
    with pytest.raises(SlotError, match="already contains slot"):
        equation_to_slots("N0+1", ["1"], [])


def test_derive_constants():
    problems = [
        ("有3个苹果", "x=3*1"),
        ("半径3米", "x=3.14*3^2"),
        ("有5个", "x=5-1"),
        ("(1/6)和6", "x=(1/6)*6+1"),
        ("bad", "x=2千米"),
    ]
    assert derive_constants(problems) == [("1", 3), ("2", 1), ("3.14", 1)]
    assert derive_constants(problems, min_count=2) == [("1", 3)]
