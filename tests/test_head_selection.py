from collections import Counter

import pytest

from methods.head_selection import heads_to_prune


def test_even_spreads_heads_over_layers():
    plan = heads_to_prune([12] * 12, 0.3, "even", seed=0)
    per_layer = sorted(len(h) for h in plan.values())
    assert sum(per_layer) == round(0.3 * 144) == 43
    assert set(per_layer) == {3, 4} and Counter(per_layer)[4] == 43 - 36
    assert all(len(set(h)) == len(h) and all(0 <= i < 12 for i in h) for h in plan.values())


def test_even_fills_full_layers_last():
    plan = heads_to_prune([1, 3], 0.75, "even", seed=1)
    assert {layer: len(h) for layer, h in plan.items()} == {0: 1, 1: 2}


def test_random_is_seeded_and_counts_exactly():
    a = heads_to_prune([6, 6, 6], 0.5, "random", seed=3)
    assert a == heads_to_prune([6, 6, 6], 0.5, "random", seed=3)
    assert sum(len(h) for h in a.values()) == 9


def test_zero_ratio_prunes_nothing():
    assert heads_to_prune([4, 4], 0.0) == {}


@pytest.mark.parametrize("ratio,strategy", [(1.5, "even"), (-0.1, "even"), (0.3, "greedy")])
def test_bad_arguments(ratio, strategy):
    with pytest.raises(ValueError):
        heads_to_prune([4, 4], ratio, strategy)
