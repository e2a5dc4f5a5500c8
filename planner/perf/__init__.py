"""Step-time model: how long one engine step takes on one replica (pure functions; the only data it
reads are the shipped kernel tables).

A step of vLLM is the sum over the model's kernels of vLLM's own measured latencies (GEMMs on an
m x n x k grid, FlashAttention/FlashInfer decode and prefill attention, the custom all-reduce, the
fused MoE; aiconfigurator-core's tables in gpu_catalog/kernels/) interpolated on the measured grid,
plus two engine constants outside those kernels (per layer and per step, fitted on H100 runs).
GPUs without tables get them transferred from the measured GPUs by a stated rule (estimated).
docs/perf.md has the model, its sources and its validation against real vLLM runs.

Modules: kernels (the tables, their interpolation and the transfer rule), step_time
(`StepTimeModel`, compiled per model/GPU/TP/format at `create`), breakdown (a step's terms, and the
plain reference form its fast paths are tested against), summary (`planner perf`'s answer),
refresh_tables (re-extracts the tables from aiconfigurator-core; optional extra, not imported here).
"""

from planner.perf.step_time import (
    WEIGHT_ONLY_FLOP_FACTOR,
    WEIGHT_ONLY_FLOP_FACTOR_SOURCE,
    StepBreakdown,
    StepTimeModel,
)
from planner.perf.summary import (
    PerfMemory,
    PerfReport,
    check_lengths,
    memory_warnings,
    perf_memory,
    perf_report,
)

__all__ = [
    "WEIGHT_ONLY_FLOP_FACTOR",
    "WEIGHT_ONLY_FLOP_FACTOR_SOURCE",
    "StepBreakdown",
    "StepTimeModel",
    "PerfMemory",
    "PerfReport",
    "check_lengths",
    "perf_memory",
    "memory_warnings",
    "perf_report",
]
