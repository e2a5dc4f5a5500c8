"""A plan's endpoints simulated, in turn or side by side over forked processes.

Each endpoint of a plan (a GPU type's pods and serverless workers) is its own simulation on its
share of the requests, so simulating them in parallel changes no figure; `verify` and
`verify_many` (`planner.optimize.verify`) cut plans into `EndpointJob`s and put the outcomes back
together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.errors import PlannerError

if TYPE_CHECKING:
    from planner.optimize.backend import PlanningBackend


class NotSimulable(Exception):
    """A plan line the simulator cannot model (e.g. a measured GPU missing from the catalog)."""


@dataclass(frozen=True)
class EndpointJob:
    """One endpoint of a plan to simulate: its share of the requests and its fleet."""

    endpoint: str
    gpu: str
    tp: int
    workload: Any
    rows: np.ndarray | None  # the share's indices into the draw (None: a closed loop)
    fleet: dict[str, Any]  # simulate_fleet's keyword arguments


_FORKED_JOBS: tuple[Any, Any, list[EndpointJob], Any] | None = None


def _simulate_in_child(k: int) -> tuple[int, Any]:
    """Pool worker: one endpoint's simulation, the jobs inherited through fork (nothing big is
    pickled in); its fraction done goes to a shared array the parent reads for progress."""
    assert _FORKED_JOBS is not None
    profile, backend, jobs, shared = _FORKED_JOBS
    job = jobs[k]
    extra: dict[str, Any] = {}
    if shared is not None:
        def report(x: float) -> None:
            shared[k] = x
        extra["progress"] = report
    try:
        return k, backend.simulate_fleet(profile, job.gpu, job.tp, job.workload, **job.fleet, **extra)
    except PlannerError as err:
        return k, err


def simulate_endpoints(
    profile: Any, backend: PlanningBackend, jobs: list[EndpointJob], *, workers: int = 1,
    progress: Callable[[float], None] | None = None,
) -> list[Any]:
    """Each job's SimOutcome, simulated in turn or over forked processes (largest share first).

    Raises:
        NotSimulable: the backend's simulator refused an endpoint.
    """
    import multiprocessing as mp  # noqa: PLC0415
    import os  # noqa: PLC0415

    from planner.capacity.tasks import die_with_parent  # noqa: PLC0415

    global _FORKED_JOBS
    sizes = [len(j.rows) if j.rows is not None else 0 for j in jobs]
    total = max(sum(sizes), 1)
    outcomes: list[Any] = [None] * len(jobs)
    if workers > 1 and len(jobs) > 1 and "fork" in mp.get_all_start_methods():
        order = sorted(range(len(jobs)), key=lambda k: -sizes[k])
        ctx = mp.get_context("fork")
        # Each job's fraction done, written by the workers (no lock: one writer per slot).
        shared = None if progress is None else ctx.Array("d", len(jobs), lock=False)
        _FORKED_JOBS = (profile, backend, jobs, shared)

        def fraction_done() -> float:  # the requests simulated so far, over all jobs
            return sum(f * n for f, n in zip(shared, sizes)) / total  # type: ignore[arg-type]

        try:
            # Ctrl-C: the workers exit quietly and the parent reports it (no traceback from each).
            with ctx.Pool(min(workers, len(jobs)), initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                results = pool.imap_unordered(_simulate_in_child, order)
                left = len(jobs)
                while left:
                    try:
                        k, out = results.next(timeout=0.5 if progress is not None else None)
                    except mp.TimeoutError:  # still running: how far the jobs are
                        progress(fraction_done())  # type: ignore[misc]
                        continue
                    left -= 1
                    if isinstance(out, PlannerError):
                        raise NotSimulable(f"{jobs[k].endpoint}: {out}")
                    outcomes[k] = out
                    if shared is not None:
                        shared[k] = 1.0
                        progress(fraction_done())  # type: ignore[misc]
        finally:
            _FORKED_JOBS = None
        return outcomes
    done = 0
    for k, job in enumerate(jobs):
        extra: dict[str, Any] = {}
        if progress is not None:
            before, share = done / total, sizes[k] / total
            extra["progress"] = lambda x, before=before, share=share: progress(before + share * x)
        done += sizes[k]
        try:
            outcomes[k] = backend.simulate_fleet(profile, job.gpu, job.tp, job.workload, **job.fleet, **extra)
        except PlannerError as err:
            raise NotSimulable(f"{job.endpoint}: {err}") from None
    return outcomes
