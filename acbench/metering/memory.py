"""Peak memory of one forward pass, above what was allocated before it (weights, inputs).

CUDA: ``torch.cuda.reset_peak_memory_stats`` then ``max_memory_allocated`` minus the level at the
start: the caching allocator's own exact bookkeeping.

CPU: torch 2.13 keeps no peak statistic for the CPU allocator (``torch.cpu`` and
``torch.accelerator`` memory stats cover accelerators only; RSS/``getrusage`` cannot be reset and
counts the allocator cache and library pools; ``tracemalloc`` does not see torch's allocations).
What does see every CPU tensor allocation is c10's profiled CPU allocator, which reports each
allocation and free, with its byte size and a timestamp, to ``torch.profiler`` when
``profile_memory=True``. We profile the forward pass, take those allocation events (the profiler's
own event tree, which also holds the events nested inside operators, intra-op worker threads
included), sort them by time and take the maximum of their running sum. That is exact at allocation
granularity (operator-internal scratch buffers included, unlike tracking op outputs with a dispatch
mode) and costs one profiled forward pass (milliseconds for small models). Blocks allocated before
profiling started are excluded by construction (their frees are not reported), so the result is
above the baseline. Sizes are the requested bytes, not allocator rounding or malloc overhead; memory
that kernels obtain outside torch's allocator (e.g. oneDNN's own scratchpads) is not seen.

Kineto prints two ``USDT ... profiler_start/stop`` lines, and c10 warns once about blocks "of unknown
size" (the pre-profiling ones): those known lines are filtered out of the native stderr around the
profiled call; every other line is passed on.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from acbench.metering._model_io import Inputs, call_model, eval_mode, input_shapes

_NATIVE_NOISE = ("SyncActivityProfilerHandler.cpp", "Memory block of unknown size")


@dataclass(frozen=True)
class MemoryStats:
    """``peak_bytes``: peak allocated during the forward pass above the level before it (weights and
    inputs excluded, the output included); ``weights_bytes``: parameters + buffers (unique storages);
    ``output_bytes``: the output's tensors."""

    peak_bytes: int
    weights_bytes: int
    output_bytes: int
    device: str
    method: str
    input_shapes: dict[str, list[int]]

    def as_dict(self) -> dict:
        return asdict(self)


def weights_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, each storage counted once (tied weights once)."""
    storages = {}
    for t in list(model.parameters()) + list(model.buffers()):
        storage = t.untyped_storage()
        storages[(t.device, storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


def tensor_bytes(obj: Any) -> int:
    """Bytes of all tensors in a (nested) output: tensors, mappings (incl. HF ModelOutput), lists, tuples."""
    if isinstance(obj, torch.Tensor):
        return obj.nbytes
    if isinstance(obj, Mapping):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


@contextlib.contextmanager
def _filtered_native_stderr() -> Iterator[None]:
    """Send fd 2 to a temp file; afterwards re-emit all lines except the profiler's known chatter."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(n in line for n in _NATIVE_NOISE))
            if kept:
                sys.stderr.write(kept)


def _cpu_peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _filtered_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
    running = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        running += size
        peak = max(peak, running)
    return peak, out


def _cuda_peak(fn: Callable[[], Any], device: torch.device) -> tuple[int, Any]:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    out = fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base, out


def peak_memory_of(fn: Callable[[], Any], *, device: str | torch.device = "cpu") -> tuple[int, Any]:
    """Peak bytes allocated on ``device`` while ``fn()`` runs, above the level before it; and fn's result."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_peak(fn, device)
    if device.type == "cpu":
        return _cpu_peak(fn)
    raise ValueError(f"unsupported device {device}")


def _device_of(model: nn.Module, inputs: Inputs) -> torch.device:
    for t in model.parameters():
        return t.device
    values = inputs.values() if isinstance(inputs, Mapping) else [inputs] if torch.is_tensor(inputs) else inputs
    return next((v.device for v in values if torch.is_tensor(v)), torch.device("cpu"))


def measure_peak_memory(model: nn.Module, inputs: Inputs, *, warmup: int = 1) -> MemoryStats:
    """Peak memory of one forward pass of ``model`` (eval mode, ``torch.inference_mode``) on ``inputs``.

    ``warmup`` unmeasured passes run first, so one-off lazy allocations are not counted.
    """
    device = _device_of(model, inputs)
    with eval_mode(model), torch.inference_mode():
        for _ in range(warmup):
            call_model(model, inputs)
        peak, out = peak_memory_of(lambda: call_model(model, inputs), device=device)
    method = ("torch.cuda.max_memory_allocated" if device.type == "cuda"
              else "torch.profiler(profile_memory=True) allocation events, max running sum")
    return MemoryStats(peak_bytes=int(peak), weights_bytes=weights_bytes(model), output_bytes=tensor_bytes(out),
                       device=str(device), method=method, input_shapes=input_shapes(inputs))
