"""Wall-clock latency of a callable, alone or several side by side in one process.

Each timed call runs under ``torch.inference_mode()`` with ``torch.set_num_threads(threads)`` held for
the whole measurement (restored afterwards) and Python's garbage collector paused. CUDA work is
synchronised around each call when CUDA is initialised. Times are in seconds.

Speed-up convention (``compare_latency``), from medians t_base and t_cand:
``throughput_gain = t_base / t_cand - 1`` (what "27.5% faster" usually means) and
``latency_reduction = 1 - t_cand / t_base`` (the share of time saved). Both are returned, plus
``ratio = t_base / t_cand``.
"""
from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

import torch


@dataclass(frozen=True)
class LatencyStats:
    """Summary of ``n`` timed calls (seconds). ``iqr = p75 - p25``; ``std`` is the sample std (0 if n == 1)."""

    median: float
    p25: float
    p75: float
    iqr: float
    mean: float
    std: float
    min: float
    max: float
    n: int
    threads: int
    samples: tuple[float, ...] = field(repr=False)

    @classmethod
    def from_samples(cls, samples: list[float], threads: int) -> LatencyStats:
        if not samples:
            raise ValueError("no samples")
        ordered = sorted(samples)
        p25, p75 = _quantile(ordered, 0.25), _quantile(ordered, 0.75)
        return cls(median=_quantile(ordered, 0.5), p25=p25, p75=p75, iqr=p75 - p25,
                   mean=statistics.fmean(ordered), std=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
                   min=ordered[0], max=ordered[-1], n=len(ordered), threads=threads, samples=tuple(samples))

    def as_dict(self, with_samples: bool = False) -> dict:
        d = asdict(self)
        if not with_samples:
            d.pop("samples")
        return d


@dataclass(frozen=True)
class SpeedUp:
    """A candidate's median against the baseline's; see the module docstring for the convention."""

    ratio: float
    throughput_gain: float
    latency_reduction: float


@dataclass(frozen=True)
class LatencyComparison:
    """Result of :func:`compare_latency`: stats per candidate and speed-ups of each non-baseline one."""

    baseline: str
    stats: dict[str, LatencyStats]
    speedups: dict[str, SpeedUp]
    rounds: int
    threads: int

    def as_dict(self) -> dict:
        return {"baseline": self.baseline, "rounds": self.rounds, "threads": self.threads,
                "statistic": "median", "stats": {k: v.as_dict() for k, v in self.stats.items()},
                "speedups": {k: asdict(v) for k, v in self.speedups.items()}}


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolation quantile of sorted data (numpy's default method)."""
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@contextlib.contextmanager
def _measurement(threads: int | None) -> Iterator[int]:
    """Fix the thread count, enter inference mode and pause gc; restore all of it on exit."""
    previous = torch.get_num_threads()
    threads = previous if threads is None else threads
    gc_was_enabled = gc.isenabled()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            gc.collect()
            gc.disable()
            yield threads
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(previous)


def _timed_calls(fn: Callable[[], object], count: int) -> list[float]:
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    out = []
    for _ in range(count):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append(time.perf_counter() - start)
    return out


def measure_latency(fn: Callable[[], object], *, warmup: int = 5, repeats: int = 30,
                    threads: int | None = None) -> LatencyStats:
    """Time ``repeats`` calls of ``fn()`` after ``warmup`` untimed ones. ``threads=None`` keeps the current count."""
    if repeats < 1 or warmup < 0:
        raise ValueError("need repeats >= 1 and warmup >= 0")
    with _measurement(threads) as used:
        _timed_calls(fn, warmup)
        samples = _timed_calls(fn, repeats)
    return LatencyStats.from_samples(samples, used)


def compare_latency(candidates: Mapping[str, Callable[[], object]], *, baseline: str | None = None,
                    warmup: int = 5, repeats: int = 30, threads: int | None = None,
                    rounds: int = 5) -> LatencyComparison:
    """Time several callables interleaved in one process so that drift (thermal, other load) hits all alike.

    Each candidate gets ``warmup`` untimed calls, then ``repeats`` timed calls split into ``rounds``
    blocks (sizes differ by at most one). Round r runs one block per candidate, starting the order at
    candidate r (rotation), so no candidate always runs first. ``baseline`` defaults to the first key.
    Each candidate's stats have ``n == repeats``.
    """
    names = list(candidates)
    baseline = names[0] if baseline is None else baseline
    if baseline not in candidates:
        raise KeyError(f"baseline {baseline!r} is not a candidate")
    if not 1 <= rounds <= repeats or warmup < 0:
        raise ValueError("need 1 <= rounds <= repeats and warmup >= 0")
    blocks = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
    samples: dict[str, list[float]] = {n: [] for n in names}
    with _measurement(threads) as used:
        for name in names:
            _timed_calls(candidates[name], warmup)
        for r, block in enumerate(blocks):
            for i in range(len(names)):
                name = names[(r + i) % len(names)]
                samples[name].extend(_timed_calls(candidates[name], block))
    stats = {n: LatencyStats.from_samples(s, used) for n, s in samples.items()}
    t_base = stats[baseline].median
    speedups = {n: SpeedUp(ratio=t_base / s.median, throughput_gain=t_base / s.median - 1,
                           latency_reduction=1 - s.median / t_base)
                for n, s in stats.items() if n != baseline}
    return LatencyComparison(baseline=baseline, stats=stats, speedups=speedups, rounds=rounds, threads=used)
