"""Metering: parameter counts, FLOPs, latency and peak memory of models."""
from acbench.metering.flops import CONVENTION, MATMUL_OPERATORS, analytic_bert_layer_flops, count_flops
from acbench.metering.latency import LatencyComparison, LatencyStats, SpeedUp, compare_latency, measure_latency
from acbench.metering.memory import MemoryStats, measure_peak_memory, peak_memory_of, tensor_bytes, weights_bytes
from acbench.metering.params import count_parameters, count_parameters_by_prefix, find_bert_backbone

__all__ = [
    "CONVENTION",
    "MATMUL_OPERATORS",
    "LatencyComparison",
    "LatencyStats",
    "MemoryStats",
    "SpeedUp",
    "analytic_bert_layer_flops",
    "compare_latency",
    "count_flops",
    "count_parameters",
    "count_parameters_by_prefix",
    "find_bert_backbone",
    "measure_latency",
    "measure_peak_memory",
    "peak_memory_of",
    "tensor_bytes",
    "weights_bytes",
]
