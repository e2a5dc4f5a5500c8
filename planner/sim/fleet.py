"""The fleet: workers (replicas) behind a router, a fleet-level queue, and the hooks autoscalers use.

Covers: pods present for the whole horizon or following a per-slot schedule of counts with a
provisioning delay; workers added at any simulated time that become ready after a delay (cold
start) and stop when idle; least-outstanding or round-robin routing over ready workers; a
fleet-level FIFO queue holding requests while no ready worker will take them (that wait shows in
TTFT); observers notified of arrivals, finishes, idle workers and readiness.

Scenario: `simulate()` builds a Fleet, starts the pods, lets `planner.sim.serverless.attach` add
its autoscaler, then the arrival process replays the workload: each request is
rejected (with a reason) if it can never fit, else dispatched to the router's pick among the
ready workers that accept it, else queued at the fleet until one does.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
import simpy
from simpy.events import Event

from planner.sim.replica import Replica, WorkerState
from planner.sim.request import Request, RequestStatus
from planner.sim.scheduler import SchedulerConfig
from planner.sim.simpy_internals import UrgentTimeout

# Routing policies: each picks, among the ready workers (worker_id order) below their cap, the one
# a request goes to, as an index into `ready` (-1: none takes it). `start` is where round robin
# resumes (the index after its last pick); the others ignore it.
RouterFn = Callable[[Sequence[Replica], int], int]


def least_outstanding(ready: Sequence[Replica], start: int) -> int:
    """Fewest outstanding requests (ties: lowest worker_id)."""
    best, best_n = -1, 1 << 62
    for i, w in enumerate(ready):
        n = w.num_outstanding
        if n < best_n and (w.max_outstanding is None or n < w.max_outstanding):
            best, best_n = i, n
    return best


def round_robin(ready: Sequence[Replica], start: int) -> int:
    """The next ready worker after the last pick."""
    n_ready = len(ready)
    for offset in range(n_ready):
        i = (start + offset) % n_ready
        w = ready[i]
        if w.max_outstanding is None or w.num_outstanding < w.max_outstanding:
            return i
    return -1


def pods_first(ready: Sequence[Replica], start: int) -> int:
    """Least outstanding among pods; only when no pod takes it, among the other (serverless) workers."""
    best_pod = best_other = -1
    best_pod_n = best_other_n = 1 << 62
    for i, w in enumerate(ready):
        n = w.num_outstanding
        if w.max_outstanding is not None and n >= w.max_outstanding:
            continue
        if w.kind == "pod":
            if n < best_pod_n:
                best_pod, best_pod_n = i, n
        elif n < best_other_n:
            best_other, best_other_n = i, n
    return best_pod if best_pod >= 0 else best_other


ROUTERS: dict[str, RouterFn] = {
    "least_outstanding": least_outstanding,
    "round_robin": round_robin,
    "pods_first": pods_first,
}


def choose_router(requested: str, serverless: object = None) -> str:
    """The routing policy a fleet runs: pods first when its serverless endpoint takes overflow only
    (the mix: flex workers serve bursts and idle out), else the one requested."""
    return "pods_first" if getattr(serverless, "overflow_only", False) else requested


# Reasons a request is not served; code 0 means "not rejected". Order is the code.
REJECT_REASONS = ("", "exceeds_max_model_len", "exceeds_kv_cache", "unserved_at_end")


class FleetObserver:
    """Base class for autoscalers and other watchers: override the hooks you need.

    Every hook runs synchronously inside the simulation at `fleet.env.now`, so it may read the
    fleet's state and call `fleet.add_worker` / `fleet.stop_worker`, or start SimPy processes on
    `fleet.env` (e.g. an idle-timeout per worker, a periodic scaler tick).
    """

    def on_arrival(self, fleet: "Fleet", request: Request) -> None:
        """A request arrived (before it is dispatched or queued)."""

    def on_queued(self, fleet: "Fleet", request: Request) -> None:
        """No ready worker would take `request`: it waits in `fleet.queue`."""

    def on_request_finished(self, fleet: "Fleet", worker: Replica, request: Request) -> None:
        """`worker` produced `request`'s last token."""

    def on_worker_idle(self, fleet: "Fleet", worker: Replica) -> None:
        """`worker` became idle: it finished its last request, or became ready with nothing to do
        (worker.idle_since == now)."""

    def on_worker_ready(self, fleet: "Fleet", worker: Replica) -> None:
        """`worker` finished starting and takes requests."""

    def on_worker_stopped(self, fleet: "Fleet", worker: Replica) -> None:
        """`worker` stopped (its span is closed)."""


class _RecordBuffer:
    """Per-request columns filled during the run (array.array: compact, cheap item writes)."""

    def __init__(self, n: int):
        nan = array("d", [math.nan])
        self.admitted_at = nan * n
        self.first_token_at = nan * n
        self.finished_at = nan * n
        self.replica = array("i", [-1]) * n
        self.preemptions = array("i", [0]) * n
        self.rejected_code = array("b", [0]) * n

    def grow(self, n: int) -> None:
        """Make room for n requests in all (a closed loop learns its count as it runs)."""
        more = n - len(self.rejected_code)
        if more > 0:
            more = max(more, len(self.rejected_code))  # doubling: amortized O(1) per request
            nan = array("d", [math.nan]) * more
            self.admitted_at.extend(nan)
            self.first_token_at.extend(nan)
            self.finished_at.extend(nan)
            self.replica.extend(array("i", [-1]) * more)
            self.preemptions.extend(array("i", [0]) * more)
            self.rejected_code.extend(array("b", [0]) * more)

    def finish(self, request: Request) -> None:
        i = request.req_id
        self.admitted_at[i] = request.admitted_at
        self.first_token_at[i] = request.first_token_at
        self.finished_at[i] = request.finished_at
        self.replica[i] = request.replica_id
        self.preemptions[i] = request.num_preemptions

    def reject(self, request: Request, code: int) -> None:
        i = request.req_id
        self.rejected_code[i] = code
        self.replica[i] = request.replica_id
        self.preemptions[i] = request.num_preemptions
        self.admitted_at[i] = request.admitted_at
        self.first_token_at[i] = request.first_token_at


class Fleet:
    """Workers, router and fleet-level queue of one simulation run.

    Attributes:
        env: the SimPy environment (start autoscaler processes on it).
        workers: every worker ever started, indexed by worker_id (stopped ones included).
        queue: requests waiting for any worker, oldest first (deque[Request]).
        observers: FleetObserver list, called in order.
        rng: numpy Generator seeded from simulate(seed=...), for observers that need randomness.
    """

    def __init__(
        self,
        env: simpy.Environment,
        setup,
        scheduler_config: SchedulerConfig,
        num_requests: int,
        *,
        jump: bool = True,
        router: str = "least_outstanding",
        series_bin_s: float = 60.0,
        seed: int = 0,
        arrivals_open: bool = False,
    ):
        if router not in ROUTERS:
            raise ValueError(f"unknown router {router!r}; use one of {', '.join(ROUTERS)}")
        self.env = env
        self.setup = setup
        self.scheduler_config = scheduler_config
        self.jump = jump
        self.router = router
        self._route: RouterFn = ROUTERS[router]
        self.rng = np.random.default_rng(seed)
        self.workers: list[Replica] = []
        self.queue: deque[Request] = deque()
        self.observers: list[FleetObserver] = []
        self.records = _RecordBuffer(num_requests)
        self.num_requests = num_requests
        self.num_resolved = 0  # finished + rejected
        # True while a source (a closed loop) may still add requests: num_requests is not final.
        self.arrivals_open = arrivals_open
        self.num_preemptions = 0
        # progress(fraction resolved) is called when num_resolved reaches _progress_next (never without one)
        self._progress: Callable[[float], None] | None = None
        self._progress_tick = 1
        self._progress_next = num_requests + 1
        self.all_resolved = env.event()
        self.check_all_resolved()
        self._max_tokens_in_kv = setup.num_gpu_blocks * scheduler_config.block_size
        self._ready: list[Replica] = []  # workers in READY state, worker_id order
        self._rr_next = 0
        # Time-weighted sums per series bin (summed over workers): running sequences × s, used blocks × s.
        self.series_bin_s = float(series_bin_s)
        self.batch_area: list[float] = []
        self.blocks_area: list[float] = []

    # --- the autoscaler API ---------------------------------------------------------------
    def add_worker(
        self, kind: str = "pod", ready_delay_s: float = 0.0, gpus: int | None = None, max_outstanding: int | None = None
    ) -> Replica:
        """Start a worker now; it takes requests from now + ready_delay_s (cold start/provisioning).

        Args:
            kind: "pod" | "active" | "flex" (copied to its WorkerSpan for billing).
            ready_delay_s: seconds until it is ready; billed from now.
            gpus: GPUs it occupies (default: the setup's tensor_parallel_size).
            max_outstanding: None (push: the router may send it any number) or a cap on the requests
                it holds, making it pull-style (serverless concurrency per worker).
        Returns:
            The worker (its worker_id indexes `workers`).
        """
        if kind not in ("pod", "active", "flex"):
            raise ValueError(f"unknown worker kind {kind!r}")
        gpus = int(self.setup.tensor_parallel_size if gpus is None else gpus)
        worker = Replica(self, len(self.workers), kind, ready_delay_s, gpus, max_outstanding)
        self.workers.append(worker)
        if worker.state == WorkerState.READY:
            self.worker_ready(worker)
        return worker

    def stop_worker(self, worker: Replica) -> None:
        """Stop `worker`: at once if idle or starting, else after it finishes what it holds."""
        if worker in self._ready:
            self._ready.remove(worker)
        worker.request_stop()

    @property
    def num_queued(self) -> int:
        """Requests in the fleet-level queue (not yet on any worker)."""
        return len(self.queue)

    @property
    def num_in_progress(self) -> int:
        """Requests held by workers (waiting in an engine or running)."""
        return sum(w.num_outstanding for w in self.workers if w.state != WorkerState.STOPPED)

    def oldest_queued_wait_s(self) -> float:
        """How long the oldest fleet-queued request has waited (0 if none)."""
        return self.env.now - self.queue[0].arrival_at if self.queue else 0.0

    def live_workers(self, kind: str | None = None) -> list[Replica]:
        """Workers not stopped (starting, ready or draining), optionally of one kind."""
        return [w for w in self.workers if w.state != WorkerState.STOPPED and (kind is None or w.kind == kind)]

    # --- dispatch ----------------------------------------------------------------------------
    def _pick(self) -> Replica | None:
        ready = self._ready
        if not ready:
            return None
        i = self._route(ready, self._rr_next)
        if i < 0:
            return None
        self._rr_next = (i + 1) % len(ready)
        return ready[i]

    def dispatch(self, request: Request) -> None:
        """Send `request` to the router's pick, or queue it at the fleet if no ready worker takes it."""
        worker = self._pick()
        if worker is None:
            self.queue.append(request)
            for obs in self.observers:
                obs.on_queued(self, request)
        else:
            worker.add_request(request)

    def _drain_queue(self) -> None:
        queue = self.queue
        while queue:
            worker = self._pick()
            if worker is None:
                return
            worker.add_request(queue.popleft())

    # --- the WorkerHost protocol (what a Replica reports) -------------------------------------
    def worker_ready(self, worker: Replica) -> None:
        """`worker` finished starting (or started ready): route to it, tell the observers."""
        self._ready.append(worker)
        self._ready.sort(key=lambda w: w.worker_id)
        worker.idle_since = self.env.now if worker.num_outstanding == 0 else None
        for obs in self.observers:
            obs.on_worker_ready(self, worker)
        self._drain_queue()
        if worker.num_outstanding == 0 and worker.state == WorkerState.READY:
            for obs in self.observers:
                obs.on_worker_idle(self, worker)

    def worker_stopped(self, worker: Replica) -> None:
        """`worker` stopped: no more routing to it."""
        if worker in self._ready:
            self._ready.remove(worker)
        for obs in self.observers:
            obs.on_worker_stopped(self, worker)

    def requests_finished(self, worker: Replica, finished: list[Request]) -> None:
        """`worker` produced the last token of `finished`: record them, refill it from the queue."""
        records = self.records
        for request in finished:
            records.finish(request)
        self.num_resolved += len(finished)
        if self.num_resolved >= self._progress_next:
            self._report_progress()
        if self.observers:
            for request in finished:
                for obs in self.observers:
                    obs.on_request_finished(self, worker, request)
            if worker.num_outstanding == 0:
                for obs in self.observers:
                    obs.on_worker_idle(self, worker)
        if self.queue:
            self._drain_queue()
        if self.num_resolved >= self.num_requests:
            self.check_all_resolved()

    def _reject(self, request: Request, reason: str) -> None:
        request.status = RequestStatus.REJECTED
        self.records.reject(request, REJECT_REASONS.index(reason))
        self.num_resolved += 1
        if self.num_resolved >= self._progress_next:
            self._report_progress()
        if self.num_resolved >= self.num_requests:
            self.check_all_resolved()

    def check_all_resolved(self) -> None:
        """Fire `all_resolved` once every request is finished or rejected and none can come."""
        if self.num_resolved >= self.num_requests and not self.arrivals_open and not self.all_resolved.triggered:
            self.all_resolved.succeed()

    def _report_progress(self) -> None:
        # Driven by resolved requests, not arrivals: an overloaded run's drain after the last
        # arrival can be most of its wall time. simulate() reports the end (1.0) itself.
        progress = self._progress  # set whenever _progress_next can be reached
        if progress is not None and self.num_resolved < self.num_requests:
            progress(self.num_resolved / self.num_requests)
        self._progress_next = (self.num_resolved // self._progress_tick + 1) * self._progress_tick

    def spread_series(self, t0: float, duration: float, num_running: int, used_blocks: int) -> None:
        """Credit a segment [t0, t0 + duration) to every series bin it overlaps, by its overlap."""
        bin_s = self.series_bin_s
        first, last = int(t0 / bin_s), int((t0 + duration) / bin_s)
        self.grow_series(last + 1)
        for b in range(first, last + 1):
            overlap = min((b + 1) * bin_s, t0 + duration) - max(b * bin_s, t0)
            if overlap > 0:
                self.batch_area[b] += num_running * overlap
                self.blocks_area[b] += used_blocks * overlap

    def grow_series(self, num_bins: int) -> None:
        """Extend the time series to `num_bins` bins."""
        grow = num_bins - len(self.batch_area)
        if grow > 0:
            self.batch_area.extend([0.0] * grow)
            self.blocks_area.extend([0.0] * grow)

    # --- processes -----------------------------------------------------------------------------
    def start_arrivals(
        self,
        arrival_s: list[float],
        prompt_tokens: list[int],
        output_tokens: list[int],
        progress: Callable[[float], None] | None = None,
    ) -> None:
        """Replay the workload: a chain of events, one per distinct arrival time.

        Each event's callback takes every request arriving at that instant (in workload order),
        rejects those that can never be served, dispatches the rest, and schedules the next
        arrival time. (A callback chain rather than a generator process: one resume less per
        request in the simulator's hottest path.)
        """
        self._arrivals = (arrival_s, prompt_tokens, output_tokens)
        self._next_arrival = 0
        if progress is not None:
            self._progress = progress
            self._progress_tick = max(1, len(arrival_s) // 100)
            self._progress_next = self._progress_tick
        self._schedule_next_arrival()

    def _schedule_next_arrival(self) -> None:
        i = self._next_arrival
        arrival_s = self._arrivals[0]
        if i < len(arrival_s):
            event = UrgentTimeout(self.env, max(0.0, arrival_s[i] - self.env.now))
            event.callbacks.append(self._on_arrival_time)

    def _on_arrival_time(self, _event: Event) -> None:
        arrival_s, prompt_tokens, output_tokens = self._arrivals
        now = self.env.now
        n = len(arrival_s)
        i = self._next_arrival
        while i < n and arrival_s[i] <= now:
            self.submit(Request(i, arrival_s[i], prompt_tokens[i], output_tokens[i]))
            i += 1
        self._next_arrival = i
        self._schedule_next_arrival()

    def submit(self, request: Request) -> bool:
        """A request arrives now: reject it (with its reason) if it can never be served, else
        tell the observers and dispatch it. Returns False when rejected."""
        prompt, output = request.num_prompt_tokens, request.max_output_tokens
        if prompt + output > self.scheduler_config.max_model_len:
            # vLLM refuses a request whose prompt plus max_tokens exceeds max_model_len.
            self._reject(request, "exceeds_max_model_len")
            return False
        if prompt + output - 1 > self._max_tokens_in_kv:
            # The last output token is never fed back, so it needs no KV slot.
            self._reject(request, "exceeds_kv_cache")
            return False
        for obs in self.observers:
            obs.on_arrival(self, request)
        self.dispatch(request)
        return True

    def pod_schedule(self, counts: list[int], slot_s: float, provision_s: float, prewarm: bool):
        """SimPy process: follow a per-slot pod count (slot 0's pods are started by the caller).

        Scale-ups start `provision_s` before the slot when `prewarm`, else at the slot start (and
        are ready provision_s later); scale-downs drain the newest pods at the slot start. The
        last count holds after the schedule ends.
        """
        env = self.env
        for i in range(1, len(counts)):
            boundary = i * slot_s
            live = [w for w in self.live_workers("pod") if w.state != WorkerState.DRAINING]
            target = counts[i]
            if target > len(live):
                start_at = max(env.now, boundary - provision_s if prewarm else boundary)
                if start_at > env.now:
                    yield env.timeout(start_at - env.now)
                for _ in range(target - len(live)):
                    self.add_worker("pod", ready_delay_s=provision_s)
            elif target < len(live):
                if boundary > env.now:
                    yield env.timeout(boundary - env.now)
                for worker in sorted(live, key=lambda w: -w.worker_id)[: len(live) - target]:
                    self.stop_worker(worker)
