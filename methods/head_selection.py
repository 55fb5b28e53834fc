"""Which heads to prune at a given ratio, when the choice does not depend on importance scores.

Used for architecture measurements (parameters, FLOPs, latency) where only *how many* heads each
layer loses matters. ``k = round(ratio * total_heads)`` heads are chosen:

- ``even``: spread over layers as evenly as possible (every layer loses ``k // L`` heads, the
  first ``k % L`` layers, in a seeded random order, one more); which heads within a layer is a
  seeded random choice.
- ``random``: ``k`` heads drawn uniformly from all heads (seeded); layers may lose all their heads.
"""
from __future__ import annotations

import random


def heads_to_prune(num_heads_per_layer: list[int], ratio: float, strategy: str = "even",
                   seed: int = 0) -> dict[int, list[int]]:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if not num_heads_per_layer or min(num_heads_per_layer) < 0:
        raise ValueError(f"need a non-empty list of head counts, got {num_heads_per_layer}")
    rng = random.Random(seed)
    total = sum(num_heads_per_layer)
    k = round(ratio * total)
    if strategy == "random":
        pool = [(layer, h) for layer, n in enumerate(num_heads_per_layer) for h in range(n)]
        chosen = rng.sample(pool, k)
        plan: dict[int, list[int]] = {}
        for layer, head in chosen:
            plan.setdefault(layer, []).append(head)
        return {layer: sorted(heads) for layer, heads in sorted(plan.items())}
    if strategy != "even":
        raise ValueError(f"unknown strategy {strategy!r} (expected 'even' or 'random')")
    layers = list(range(len(num_heads_per_layer)))
    quota = dict.fromkeys(layers, 0)
    remaining = k
    while remaining:  # round-robin over layers in a seeded order, skipping full layers
        order = layers[:]
        rng.shuffle(order)
        progressed = False
        for layer in order:
            if remaining and quota[layer] < num_heads_per_layer[layer]:
                quota[layer] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return {layer: sorted(rng.sample(range(num_heads_per_layer[layer]), q))
            for layer, q in quota.items() if q}
