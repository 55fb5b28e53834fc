"""Every method in ``methods/`` pinned by golden numbers on a fixed tiny batch.

The smoke reference gates counts only, so a loss scaled by 0 (or any change of a method's
arithmetic) would pass it; these numbers, computed by the code when they were committed, catch it
and name the method. A deliberate change of a method updates its golden value in the same commit.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from method_golden_cases import CASES

GOLDEN = {
    "logit_kd": (0.7583656311035156,),
    "dkd": (6.972569465637207,),
    "fitnet": (1.9165421724319458,),
    "ofa": (10.294045448303223, 5.037086486816406),  # paper formula (ofa_total), official-code form (OFA default)
    "minilm": (1.2008371353149414,),
    "minilmv2": (0.5326756834983826,),
    "tinybert": (0.043103381991386414, 1.5765211582183838, 1.9217524528503418),
    "uhkd": (3.5992021560668945, 1.3958446979522705, 4.047434329986572),  # raw; chosen reading: weight, total
    "feature_grid": (18.0, 22.068756103515625),
    "head_importance": (5.062503814697266, 11.764540672302246, 4.573838233947754),
    "head_selection": (0.0, 2.0, 10.0, 11.0, 22.0, 23.0, 3.0, 20.0, 21.0),
    "iterative_pruning": (0.0, 0.16666666666666666, 0.3333333333333333, 0.5, 10.0, 11.0, 12.0, 20.0, 21.0, 22.0),
    "dynamic_pruning": (2.0, 3.0, 11.0, 20.0, 21.0, 0.8709959387779236),
    "head_masking": (10.492445945739746,),
    "head_removal": (10.492445945739746, 33112.0),  # = masking the same heads, as it must
    "head_gates": (0.39462029933929443,),
    "attention_heads": (2.0, 4.0, 4.0),
    "no_distillation": (2.5653481483459473,),
    # attention_mse (scores, the default), attention_mse (probabilities), minilm, minilm_no_vr, minilmv2
    "attention_alignment": (3.2662405967712402, 0.04304923117160797, 1.1294164657592773, 0.6400350332260132,
                            0.2385350465774536),
    "attention_capture": (3.9025866985321045, 4.187610626220703, 3.834829807281494, 3.0810484886169434,
                          3.6496074199676514, 3.2047877311706543, 0.24341294169425964, -2.794299840927124),
}
REL = 1e-4  # float32 kernels may differ in the last bits between CPUs; a real change moves far more


def golden_mismatch(name: str) -> str | None:
    got, want = CASES[name](), GOLDEN[name]
    if len(got) != len(want) or not all(math.isclose(g, w, rel_tol=REL, abs_tol=1e-7) for g, w in zip(got, want)):
        return f"method {name}: {got} on the fixed batch, golden {want}"
    return None


def test_every_method_module_has_a_golden_value():
    modules = {p.stem for p in (Path(__file__).resolve().parents[1] / "methods").glob("*.py")}
    modules -= {"__init__", "registry"}  # the registry looks methods up; it computes nothing
    assert modules == set(GOLDEN) == set(CASES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_method_matches_its_golden_value(name):
    problem = golden_mismatch(name)
    assert problem is None, problem


def test_a_loss_scaled_by_zero_fails_naming_the_method(monkeypatch):
    import methods.dkd

    real = methods.dkd.dkd_loss
    monkeypatch.setattr(methods.dkd, "dkd_loss", lambda *a, **k: 0 * real(*a, **k))
    assert golden_mismatch("dkd").startswith("method dkd: (0.0,) on the fixed batch")
