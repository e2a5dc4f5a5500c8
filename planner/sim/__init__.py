"""SimPy serving simulator: continuous-batching replicas (scheduler → KV manager → block pool),
a fleet of pods and serverless workers behind a router, per-request records and metrics.

Public API: `simulate(workload, setup, fleet, slo, *, jump, router, seed, progress) -> SimOutcome`
(a workload, or a closed loop of users); `closed_loop_bench(setup, users=..., ...)` for a
benchmark-style closed loop on one replica (`planner.scenario.bench_closed_loop` builds the replica).
"""

from planner.sim.benchmark import ClosedLoopBench, closed_loop_bench
from planner.sim.fleet import REJECT_REASONS, ROUTERS, Fleet, FleetObserver
from planner.sim.metrics import LatencyStats, RequestRecords, SimMetrics, WorkerSpan
from planner.sim.replica import Replica, WorkerState
from planner.sim.scheduler import SchedulerConfig
from planner.sim.simulation import SimOutcome, simulate
from planner.sim.spec import FleetSpec, ReplicaSetup
from planner.sim.step_models import LinearStepModel, StepTimeModelLike

__all__ = [
    "ClosedLoopBench",
    "closed_loop_bench",
    "REJECT_REASONS",
    "ROUTERS",
    "Fleet",
    "FleetObserver",
    "FleetSpec",
    "LatencyStats",
    "LinearStepModel",
    "Replica",
    "ReplicaSetup",
    "RequestRecords",
    "SchedulerConfig",
    "SimMetrics",
    "SimOutcome",
    "StepTimeModelLike",
    "WorkerSpan",
    "WorkerState",
    "simulate",
]
