"""A plan's endpoints simulated side by side in forked workers: the same outcomes as in turn, and
progress that moves while the workers run (read from a shared array), not only when one ends."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from planner.optimize.endpoints import EndpointJob, simulate_endpoints


class _Backend:
    """simulate_fleet stand-in: reports half way, waits, reports the end; returns its inputs."""

    def simulate_fleet(self, profile, gpu, tp, workload, *, pods, progress=None):  # noqa: ANN001, ANN201
        if progress is not None:
            progress(0.5)
        time.sleep(0.8)  # long enough for the parent to poll (every 0.5 s) while it runs
        if progress is not None:
            progress(1.0)
        return SimpleNamespace(gpu=gpu, pods=pods, n=len(workload))


def _jobs() -> list[EndpointJob]:
    return [EndpointJob(f"g{k}-tp1", f"g{k}", 1, np.zeros(n), np.arange(n), {"pods": k + 1})
            for k, n in enumerate((30, 10))]


def test_side_by_side_equals_in_turn_and_progress_moves_while_the_workers_run():
    seen: list[float] = []
    together = simulate_endpoints(None, _Backend(), _jobs(), workers=2, progress=seen.append)
    in_turn = simulate_endpoints(None, _Backend(), _jobs(), workers=1)
    assert [vars(o) for o in together] == [vars(o) for o in in_turn]
    assert seen == sorted(seen) and seen[-1] == 1.0
    # Both jobs at half way before either ended: (0.5 x 30 + 0.5 x 10) / 40.
    assert 0.5 in seen

