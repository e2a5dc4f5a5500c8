"""`simulate()`: replay a workload against a fleet and return per-request records and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from planner.errors import PlannerError
from planner.sim.fleet import REJECT_REASONS, ROUTERS, Fleet, choose_router
from planner.sim.metrics import RequestRecords, SimMetrics, WorkerSpan, compute_metrics
from planner.sim.replica import WorkerState
from planner.sim.request import Request
from planner.sim.closed_loop import ClosedLoopSource
from planner.sim.spec import FleetSpec, ReplicaSetup
from planner.traffic import Workload
from planner.traffic.closed_loop import ClosedLoop


@dataclass(frozen=True)
class SimOutcome:
    """Result of one run: records (numpy, one per request), metrics (pydantic), worker spans (billing).

    `workload` is what was simulated as a Workload: the input one, or for a closed loop the
    requests its users sent (arrival = send time), horizon = the loop's horizon or, with only a
    request budget, the time the last request finished; `user` says who sent each (closed loop).
    """

    records: RequestRecords
    metrics: SimMetrics
    workers: list[WorkerSpan]
    workload: Any = None
    user: np.ndarray | None = None  # closed loop: the user (0 .. users-1) who sent each request


def _validate(workload: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    arrival = np.asarray(workload.arrival_s, dtype=np.float64)
    prompt = np.asarray(workload.prompt_tokens, dtype=np.int64)
    output = np.asarray(workload.output_tokens, dtype=np.int64)
    if not (len(arrival) == len(prompt) == len(output)):
        raise PlannerError("workload arrays differ in length; regenerate the workload")
    if len(arrival):
        if not np.all(np.isfinite(arrival)) or arrival[0] < 0 or np.any(np.diff(arrival) < 0):
            raise PlannerError("workload arrival times must be finite, >= 0 and sorted; fix the trace or generator")
        if prompt.min() < 1 or output.min() < 1:
            raise PlannerError("every request needs >= 1 prompt token and >= 1 output token; fix the workload sizes")
    horizon = float(getattr(workload, "horizon_s", arrival[-1] if len(arrival) else 0.0))
    return arrival, prompt, output, horizon


def simulate(
    workload: Any,
    setup: ReplicaSetup,
    fleet: FleetSpec,
    slo: Any = None,
    *,
    jump: bool = True,
    router: str = "least_outstanding",
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    series_bin_s: float | None = None,
) -> SimOutcome:
    """Replay `workload` against `fleet` replicas of `setup` and measure what users would see.

    Args:
        workload: planner.traffic.Workload (arrival_s, prompt_tokens, output_tokens, horizon_s),
            or a closed loop of users (planner.traffic.ClosedLoop: each user sends its
            next request when the previous one completes; see planner.sim.closed_loop).
        setup: one replica's step-time model, KV blocks and engine limits.
        fleet: pods (fixed or scheduled) and an optional serverless spec.
        slo: anything with ttft_seconds, tpot_seconds, attainment (profile's SloSection), or None.
        jump: advance uniform decode runs in one event (exact); False steps one by one.
        router: "least_outstanding", "round_robin" or "pods_first" (serverless workers take only what no
            pod accepts); a serverless endpoint with overflow_only runs pods_first (`choose_router`).
        seed: seeds `Fleet.rng` (the engine itself is deterministic).
        progress: called with the fraction of requests resolved (finished or rejected), about
            every 1% of them, and with 1.0 at the end (an overloaded run's drain after the last
            arrival moves it too).
        series_bin_s: bin of the KV/batch time series (default: horizon / 288, at least 1 s).
    Returns:
        SimOutcome. The run lasts until every request is finished or rejected, and at least
        until the workload's horizon; workers still live then are stopped at that time.
    """
    if router not in ROUTERS:
        raise PlannerError(f"unknown router {router!r}; use one of {', '.join(ROUTERS)}")
    if setup.num_gpu_blocks < 1:
        raise PlannerError("the replica has no KV-cache blocks; use a larger GPU or more tensor parallelism")
    if fleet.max_pods == 0 and fleet.serverless is None:
        raise PlannerError("the fleet has no pods and no serverless workers; set --replicas >= 1")
    closed = workload if isinstance(workload, ClosedLoop) else None
    if closed is None:
        arrival, prompt, output, horizon = _validate(workload)
        num_requests = len(arrival)
    else:
        horizon, num_requests = closed.horizon_s or 0.0, 0
    wall0 = time.perf_counter()
    env = simpy.Environment()
    bin_s = series_bin_s or max(1.0, horizon / 288.0)
    sim = Fleet(
        env, setup, setup.scheduler_config, num_requests, jump=jump, router=choose_router(router, fleet.serverless),
        series_bin_s=bin_s, seed=seed, arrivals_open=closed is not None,
    )
    for _ in range(fleet.initial_pods):
        sim.add_worker("pod", max_outstanding=fleet.pod_max_outstanding)
    if fleet.pod_schedule is not None and len(fleet.pod_schedule) > 1:
        env.process(sim.pod_schedule(fleet.pod_schedule, fleet.pod_schedule_slot_s, fleet.pod_provision_s, fleet.pod_prewarm))
    if fleet.serverless is not None:
        from planner.sim import serverless  # imported lazily so pods-only runs never need it

        serverless.attach(sim, fleet.serverless)
    source = user = None
    if closed is None:
        sim.start_arrivals(arrival.tolist(), prompt.tolist(), output.tolist(), progress)
    else:
        source = ClosedLoopSource(sim, closed, progress)
        source.start()
    try:
        env.run(until=sim.all_resolved)
    except RuntimeError as err:
        # Nothing left to happen (e.g. a pod schedule ending at 0 pods): the rest is unserved.
        if "No scheduled events left" not in str(err):
            raise
    if env.now < horizon:
        env.run(until=horizon)
    end_s = env.now
    _mark_unserved(sim)
    if progress is not None:
        progress(1.0)
    spans = _close_spans(sim, end_s)
    if source is not None:
        n = source.num_sent
        arrival = np.asarray(source.arrival_at, dtype=np.float64)
        prompt = np.asarray(source.draws.prompt_tokens[:n], dtype=np.int64)
        output = np.asarray(source.draws.output_tokens[:n], dtype=np.int64)
        workload = Workload(arrival, prompt, output, horizon or max(end_s, 1e-9), closed.source,  # type: ignore[union-attr]
                            num_capped=source.draws.num_capped_among(n))
        user = np.asarray(source.user_of, dtype=np.int32)
    records = _records(sim, arrival, prompt, output)
    wall_s = time.perf_counter() - wall0
    metrics = compute_metrics(
        records,
        spans,
        slo,
        num_gpu_blocks=setup.num_gpu_blocks,
        batch_area=sim.batch_area,
        blocks_area=sim.blocks_area,
        bin_s=bin_s,
        num_preemptions=sim.num_preemptions,
        simulated_seconds=end_s,
        wall_seconds=wall_s,
        horizon_s=horizon,
    )
    return SimOutcome(records=records, metrics=metrics, workers=spans, workload=workload, user=user)


def _mark_unserved(sim: Fleet) -> None:
    """Requests still queued or in a worker when nothing more can happen are recorded as unserved."""
    if sim.num_resolved >= sim.num_requests:
        return
    left: list[Request] = list(sim.queue)
    for w in sim.workers:
        left.extend(w.scheduler.running)
        left.extend(w.scheduler.waiting)
    code = REJECT_REASONS.index("unserved_at_end")
    for request in left:
        sim.records.reject(request, code)


def _close_spans(sim: Fleet, end_s: float) -> list[WorkerSpan]:
    spans = []
    for w in sim.workers:
        stopped = w.stopped_at if w.state == WorkerState.STOPPED else end_s
        spans.append(
            WorkerSpan(
                worker_id=w.worker_id,
                kind=w.kind,
                started_at=w.started_at,
                ready_at=None if np.isnan(w.ready_at) else w.ready_at,
                stopped_at=stopped,
                busy_s=w.busy_s,
                gpus=w.gpus,
                num_requests=w.num_served,
            )
        )
    return spans


def _records(sim: Fleet, arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray) -> RequestRecords:
    buf = sim.records
    codes = np.frombuffer(buf.rejected_code, dtype=np.int8)[: len(arrival)] if len(arrival) else np.zeros(0, dtype=np.int8)
    reasons = np.asarray(REJECT_REASONS, dtype=object)[codes].astype(str) if len(arrival) else np.zeros(0, dtype=str)

    n = len(arrival)  # a closed loop's buffers may be longer than what it sent

    def f64(a):
        return np.frombuffer(a, dtype=np.float64)[:n].copy() if n else np.zeros(0)

    def i32(a):
        return np.frombuffer(a, dtype=np.int32)[:n].copy() if n else np.zeros(0, dtype=np.int32)

    return RequestRecords(
        arrival_at=arrival,
        admitted_at=f64(buf.admitted_at),
        first_token_at=f64(buf.first_token_at),
        finished_at=f64(buf.finished_at),
        replica=i32(buf.replica),
        preemptions=i32(buf.preemptions),
        prompt_tokens=prompt,
        output_tokens=output,
        rejected_reason=reasons,
    )
