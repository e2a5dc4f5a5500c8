"""Step-time model: how long one engine step takes on one replica (pure functions, no I/O).

One step of a vLLM-like engine runs the model once over every scheduled token: one decode token per
running sequence plus chunks of prefill. Its time, per GPU of a tensor-parallel group, is

    layers x [ sum over the layer's GEMMs of roofline(stream, compute)   (per kernel)
             + layer_fixed_s                                             (small non-GEMM kernels)
             + activation traffic per token x tokens                     (norms, rope, SiLU, adds)
             + attention (decode: K/V bytes; prefill: FLOPs)
             + 2 all-reduces of the activations                          (tensor parallel only) ]
    + lm_head GEMM for the rows that need logits + host overhead

A GEMM with W weight bytes over M rows streams in kernel_fixed_s + W / bandwidth and computes in
2 M K N / F (F = flop_fraction x peak at the GEMM's format); the two combine as a smooth roofline
(stream^n + compute^n)^(1/n): a decode step with a few sequences is streaming-bound, a large batch
or a prefill compute-bound, with a measured soft transition between. Weights stream once per step
whatever the batch (that is why batching pays); MoE layers stream only the experts the step's
tokens touch, E x (1 - (1 - k/E)^tokens) in expectation. Decode attention reads every sequence's
K/V at the streaming bandwidth, but a kernel that does not split long contexts cannot go faster
than one (sequence, KV head) scanning its context alone (attention_unit_bytes_per_s).

The efficiency parameters come from the GPU's `PerfCalibration` (`planner.inputs.calibration`); docs/perf.md
has the fit and its errors. The simulator calls `step_seconds` / `decode_run_seconds` very often:
`create` precomputes every constant, and the per-step work is a few float operations plus a sum
and a max over the running sequences' context lengths.

Modules: constants (what `create` precomputes), step_time (`StepTimeModel`), summary (`planner
perf`'s answer); fit (the offline calibration fit, not imported here).
"""

from planner.perf.constants import (
    ALLREDUCE_LATENCY_S,
    ALLREDUCE_LATENCY_SOURCE,
    FP8_FLOP_FRACTION_RATIO,
    KERNELS_PER_NORM,
    MOE_ROUTING_KERNELS,
    ONE_SHOT_LINK_FRACTION,
    RING_LATENCY_S,
    RING_LINK_FRACTION,
    SMALL_KERNELS_PER_LAYER,
    WEIGHT_ONLY_FLOP_FACTOR,
    WEIGHT_ONLY_FLOP_FACTOR_SOURCE,
    StepBreakdown,
    StepTimeConstants,
    step_time_constants,
)
from planner.perf.summary import (
    PerfMemory,
    PerfReport,
    check_lengths,
    memory_warnings,
    perf_memory,
    perf_report,
)
from planner.perf.step_time import (
    StepTimeModel,
)

__all__ = [
    "WEIGHT_ONLY_FLOP_FACTOR",
    "WEIGHT_ONLY_FLOP_FACTOR_SOURCE",
    "SMALL_KERNELS_PER_LAYER",
    "KERNELS_PER_NORM",
    "MOE_ROUTING_KERNELS",
    "FP8_FLOP_FRACTION_RATIO",
    "ALLREDUCE_LATENCY_S",
    "ALLREDUCE_LATENCY_SOURCE",
    "ONE_SHOT_LINK_FRACTION",
    "RING_LINK_FRACTION",
    "RING_LATENCY_S",
    "StepBreakdown",
    "StepTimeConstants",
    "step_time_constants",
    "StepTimeModel",
    "PerfMemory",
    "PerfReport",
    "check_lengths",
    "perf_memory",
    "memory_warnings",
    "perf_report",
]
