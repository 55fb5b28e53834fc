"""Statistics behind the verdicts: paired bootstrap intervals, minimum detectable effects, decisions.

- :mod:`acbench.stats.bootstrap`: paired 95% intervals over items and seeds (and timing rounds);
- :mod:`acbench.stats.mde`: the minimum detectable paired difference of a design;
- :mod:`acbench.stats.decision`: supported / contradicted / inconclusive from an interval.
"""
from acbench.stats.bootstrap import Estimate, paired_bootstrap, rounds_bootstrap
from acbench.stats.decision import CONTRADICTED, INCONCLUSIVE, SUPPORTED, decide
from acbench.stats.mde import connor_sample_size, mde_paired_proportion

__all__ = ["Estimate", "paired_bootstrap", "rounds_bootstrap", "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE",
           "decide", "connor_sample_size", "mde_paired_proportion"]
