"""The simulator's fast paths for the real step-time model give the same records as the plain ones.

A model whose decode cost depends on the contexts only through their count and sum
(`decode_depends_on_context_sum`) is called with those two numbers (`step_seconds_summed`,
`decode_run_ends`); any other model gets the context arrays (`step_seconds`, `decode_run_seconds`).
Hiding the summed methods behind a plain wrapper must not move a single record.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.inputs.catalog import get_gpu
from planner.inputs.models import get_model
from planner.perf import StepTimeModel
from planner.sim import FleetSpec, simulate
from sim_helpers import poisson_workload, setup

LLAMA = StepTimeModel.create(get_model("llama-3.1-8b"), get_gpu("h100-sxm"))


class _Plain:
    """Only the two methods of StepTimeModelLike: the simulator's generic path."""

    def __init__(self, model):
        self.step_seconds = model.step_seconds
        self.decode_run_seconds = model.decode_run_seconds


def _records(model, wl, blocks, pods, jump):
    out = simulate(wl, setup(model, num_gpu_blocks=blocks, max_num_seqs=128), FleetSpec(pods=pods), None, jump=jump)
    r = out.records
    return [r.admitted_at, r.first_token_at, r.finished_at, r.replica, r.preemptions], out.metrics


@pytest.mark.parametrize("rate, blocks, pods, jump", [
    (6.0, 4000, 1, True),  # light load: long decode runs cut by arrivals
    (40.0, 4000, 2, True),  # heavy load: large batches, mixed steps
    (25.0, 300, 1, True),  # KV pressure: steps planned request by request, preemptions
    (25.0, 300, 1, False),  # step by step
])
def test_summed_path_equals_the_array_path(rate, blocks, pods, jump):
    assert LLAMA.decode_depends_on_context_sum
    wl = poisson_workload(rate, 60.0, (20, 1500), (1, 300), seed=int(rate))
    fast, m_fast = _records(LLAMA, wl, blocks, pods, jump)
    plain, m_plain = _records(_Plain(LLAMA), wl, blocks, pods, jump)
    for a, b in zip(fast, plain):
        np.testing.assert_array_equal(a, b)
    assert m_fast.model_dump(exclude={"wall_seconds", "requests_per_wall_second"}) == \
        m_plain.model_dump(exclude={"wall_seconds", "requests_per_wall_second"})
    if blocks == 300:
        assert m_fast.preemptions > 0  # the request-by-request path ran
