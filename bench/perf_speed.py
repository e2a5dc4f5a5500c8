"""Per-call cost of the step-time model (what the simulator pays per engine step).

Usage: python bench/perf_speed.py

Prints microseconds per call of `StepTimeModel.step_seconds` (pure decode and mixed), of
`decode_run_seconds` (a vectorized run of steps, per call and per step), of `prefill_seconds`, and of
`StepTimeModel.create`, for a dense, a sliding-window and an MoE model at several batch sizes; the
`ref` columns time the plain reference forms of the two hot calls (`_reference_step_seconds`,
`_reference_decode_run_seconds`), which the fast paths equal within float rounding. The `sim` columns
time what the simulator calls for a model without sliding-window layers: `step_seconds_summed` (a
decode step from the contexts' count and sum) and `decode_run_pieces` (a 64-step run as lines);
"-" for gemma-2-9b, whose sliding-window layers need the context arrays.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog import get_gpu  # noqa: E402
from planner.models import get_model  # noqa: E402
from planner.perf import StepTimeModel  # noqa: E402


def _us(fn, number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=3))
    return best / number * 1e6


def main() -> None:
    gpu = get_gpu("h200")
    rng = np.random.default_rng(0)
    print(f"{'model':16s} {'batch':>5s} {'step us':>8s} {'ref':>5s} {'sim':>5s} {'mixed us':>9s} {'ref':>5s} "
          f"{'run(64) us':>11s} {'ref':>5s} {'sim':>5s} {'per step us':>11s} {'prefill us':>10s}")
    for name in ("llama-3.1-8b", "gemma-2-9b", "qwen3-30b-a3b"):
        m = StepTimeModel.create(get_model(name), gpu)
        for batch in (1, 32, 256, 1024):
            ctx = rng.integers(100, 8000, size=batch)
            step = _us(lambda: m.step_seconds(ctx), 5000)
            mixed = _us(lambda: m.step_seconds(ctx, [(512, 1024)]), 5000)
            run = _us(lambda: m.decode_run_seconds(ctx, 64), 1000)
            ref_step = _us(lambda: m._reference_step_seconds(ctx), 5000)
            ref_mixed = _us(lambda: m._reference_step_seconds(ctx, [(512, 1024)]), 5000)
            ref_run = _us(lambda: m._reference_decode_run_seconds(ctx, 64), 1000)
            pre = _us(lambda: m.prefill_seconds(2048), 5000)
            sim_step = sim_run = "-"
            if m.decode_depends_on_context_sum:
                total = int(ctx.sum())
                sim_step = f"{_us(lambda: m.step_seconds_summed(batch, total), 5000):5.1f}"
                sim_run = f"{_us(lambda: m.decode_run_pieces(batch, total, 64), 5000):5.1f}"
            print(f"{name:16s} {batch:5d} {step:8.1f} {ref_step:5.1f} {sim_step:>5s} {mixed:9.1f} {ref_mixed:5.1f} "
                  f"{run:11.1f} {ref_run:5.1f} {sim_run:>5s} {run / 64:11.2f} {pre:10.1f}")
    spec = get_model("llama-3.1-70b")
    create = _us(lambda: StepTimeModel.create(spec, gpu, tensor_parallel_size=4), 200)
    print(f"\nStepTimeModel.create (llama-3.1-70b, TP 4): {create:.0f} us per call")


if __name__ == "__main__":
    main()
