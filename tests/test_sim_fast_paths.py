"""The simulator's fast paths for the real step-time model give the records of the plain ones.

A model whose decode cost depends on the contexts only through their count and sum
(`decode_depends_on_context_sum`) is called with those two numbers (`step_seconds_summed`, and
`decode_run_pieces`, whose lines the replica sums in closed form); any other model gets the context
arrays (`step_seconds`, `decode_run_seconds`, summed step by step). Hiding the fast methods behind a
plain wrapper must leave every decision (admission order, replica, preemptions) as it was, and move
times by float rounding only.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.inputs.catalog import get_gpu
from planner.inputs.models import get_model
from planner.perf import StepTimeModel
from planner.sim import FleetSpec, simulate
from planner.sim.replica import run_end_s, run_pieces, steps_ending_before
from sim_helpers import poisson_workload, setup

LLAMA = StepTimeModel.create(get_model("llama-3.1-8b"), get_gpu("h100-sxm"))


class _Plain:
    """Only the two methods of StepTimeModelLike: the simulator's generic path."""

    def __init__(self, model):
        self.step_seconds = model.step_seconds
        self.decode_run_seconds = model.decode_run_seconds


def _run(model, wl, blocks, pods, jump, async_scheduling=False):
    return simulate(wl, setup(model, num_gpu_blocks=blocks, max_num_seqs=128, async_scheduling=async_scheduling),
                    FleetSpec(pods=pods), None, jump=jump)


@pytest.mark.parametrize("rate, blocks, pods, jump, async_scheduling", [
    (6.0, 4000, 1, True, False),  # light load: long decode runs cut by arrivals
    (6.0, 4000, 1, True, True),  # the same, async scheduling
    (40.0, 4000, 2, True, False),  # heavy load: large batches, mixed steps
    (40.0, 4000, 2, True, True),
    (25.0, 300, 1, True, False),  # KV pressure: steps planned request by request, preemptions
    (25.0, 300, 1, False, False),  # step by step
])
def test_summed_path_equals_the_array_path(rate, blocks, pods, jump, async_scheduling):
    """The summed path (closed-form decode runs) against the array path, which has none."""
    assert LLAMA.decode_depends_on_context_sum
    wl = poisson_workload(rate, 60.0, (20, 1500), (1, 300), seed=int(rate))
    fast = _run(LLAMA, wl, blocks, pods, jump, async_scheduling).records
    plain = _run(_Plain(LLAMA), wl, blocks, pods, jump, async_scheduling).records
    np.testing.assert_array_equal(fast.replica, plain.replica)
    np.testing.assert_array_equal(fast.preemptions, plain.preemptions)
    for name in ("admitted_at", "first_token_at", "finished_at"):
        np.testing.assert_allclose(getattr(fast, name), getattr(plain, name), rtol=1e-12, atol=1e-12)
    if not jump:  # no decode run: the same floats
        np.testing.assert_array_equal(fast.finished_at, plain.finished_at)
    if blocks == 300:
        assert fast.preemptions.sum() > 0  # the request-by-request path ran


@settings(max_examples=80, deadline=None)
@given(lines=st.lists(st.tuples(st.integers(1, 400), st.floats(1e-4, 0.2), st.floats(-1e-7, 1e-3)),
                      min_size=1, max_size=4),
       probes=st.lists(st.floats(-0.01, 1.2), min_size=1, max_size=6))
def test_closed_form_run_equals_the_summed_steps(lines, probes):
    """A run given as lines: its ends, and the count of steps ending before any time, against the
    step times summed one by one."""
    starts = np.cumsum([0] + [n for n, _, _ in lines])
    num_steps = int(starts[-1])
    pieces = [(int(k0), first, slope) for k0, (_, first, slope) in zip(starts, lines)]
    steps = np.concatenate([first + slope * np.arange(n) for n, first, slope in lines])
    assert steps.min() > 0  # a slightly negative slope still leaves every step some time
    ends = np.cumsum(steps)
    run, end = run_pieces(pieces, num_steps)
    closed = np.array([run_end_s(run, k) for k in range(num_steps)])
    np.testing.assert_allclose(closed, ends, rtol=1e-12)
    assert end == closed[-1]
    for frac in probes:
        x = frac * end
        count = steps_ending_before(run, num_steps, x)
        assert count == int(np.sum(closed < x))
    for k in (0, num_steps // 2, num_steps - 1):  # exactly at a step's end: that step is not before
        assert steps_ending_before(run, num_steps, closed[k]) == int(np.sum(closed < closed[k]))
