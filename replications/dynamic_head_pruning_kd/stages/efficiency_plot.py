"""Plot of reduction and speed-up against pruning ratio, with the published points marked."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from acbench.config import Claim  # noqa: E402

REDUCTION_SERIES = {
    "params_reduction_pct.whole_model": "params, whole model",
    "params_reduction_pct.encoder": "params, encoder layers",
    "params_reduction_pct.attention": "params, attention blocks",
    "flops_reduction_pct": "FLOPs",
}


def _series(metrics: dict[str, float], family: str, ratios: list[float]) -> list[float]:
    return [metrics[f"{family}@{r:.2f}"] for r in ratios]


def plot_efficiency(config, metrics: dict[str, float], claims: list[Claim],
                    path: Path) -> list[tuple[str, float, float]]:
    """Draw the figure at ``path``; return the published points marked, as (claim id, x %, y)."""
    ratios = config.ratios
    xs = [100 * r for r in ratios]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors: dict[str, str] = {}
    marked = []
    for family, label in REDUCTION_SERIES.items():
        (line,) = left.plot(xs, _series(metrics, family, ratios), marker="o", label=label)
        colors[family] = line.get_color()
    for shape in config.latency_shapes:
        family = f"speedup_pct.{shape.tag}"
        (line,) = right.plot(xs, _series(metrics, family, ratios), marker="o",
                             label=f"batch {shape.batch} × seq {shape.seq}")
        colors[family] = line.get_color()
    for claim in claims:  # each published point in the colour of the series it is compared with
        if claim.result is None or "@" not in claim.result.key:
            continue
        family, ratio = claim.result.key.split("@")
        axis = right if family.startswith("speedup_pct") else left
        axis.plot([100 * float(ratio)], [claim.value], marker="*", markersize=15, linestyle="none",
                  color=colors.get(family, "black"), markeredgecolor="black",
                  label=f"published: {claim.value:g}{claim.unit} ({claim.id})")
        marked.append((claim.id, 100 * float(ratio), claim.value))
    left.set(title="Reduction vs heads pruned", xlabel="heads pruned (%)", ylabel="reduction (%)")
    right.set(title="Speed-up vs heads pruned (CPU)", xlabel="heads pruned (%)",
              ylabel="speed-up = t(unpruned)/t(pruned) − 1 (%)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    g = config.model
    fig.suptitle(f"Head removal on a {g.num_layers}×{g.num_heads}-head {g.family} encoder "
                 f"(hidden {g.hidden}); ★ = published (2511.17577, 30%)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return marked
