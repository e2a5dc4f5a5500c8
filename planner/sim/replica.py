"""One model replica (worker) as a SimPy process: the engine's step loop, with jump mode.

Covers: a vLLM-style engine on `tensor_parallel_size` GPUs stepping its scheduler; idle waits;
readiness after a start-up delay; draining and stopping; uniform decode runs advanced in one
jump that an arrival can cut short.

Scenario: the fleet dispatches requests with `add_request`. The process loops: plan a step
(scheduler.schedule), ask the step-time model for its duration, wait that long, apply it. When
the planned step is a pure decode step that will repeat unchanged for k steps (no arrival
considered), it waits for the exact sum of those k step times at once; an arrival that could
join the batch cuts the run at the end of the step in progress at the arrival (the process is
woken then instead), as a real engine only sees the new request at its next step boundary; with
async scheduling (vLLM's default, and the deploy files') one step later, as the step after the
one in progress was planned before the request came.
"""

from __future__ import annotations

import enum
import math
from typing import Protocol

import numpy as np
import simpy

from planner.sim.block_pool import BlockPool
from planner.sim.kv_cache_manager import KVCacheManager
from planner.sim.request import Request
from planner.sim.scheduler import Scheduler, SchedulerConfig
from planner.sim.simpy_internals import wake_earlier
from planner.sim.spec import ReplicaSetup


# A decode run whose step times are lines, piece by piece (planner.perf's decode_run_pieces), is
# summed in closed form: within a piece starting at step k0 whose steps take first + (k - k0) slope,
# step k ends (j + 1) first + slope j (j + 1) / 2 after the piece's start (j = k - k0). A run is
# kept as [(k0, end of the step before k0, first, slope), ...].
RunPieces = list[tuple[int, float, float, float]]


def run_pieces(lines: list[tuple[int, float, float]], num_steps: int) -> tuple[RunPieces, float]:
    """The run's pieces with the end of the step before each, and the run's end (from its start)."""
    if len(lines) == 1:
        _, first, slope = lines[0]
        return [(0, 0.0, first, slope)], num_steps * first + slope * ((num_steps * (num_steps - 1)) >> 1)
    pieces: RunPieces = []
    before = 0.0
    for i, (start, first, slope) in enumerate(lines):
        pieces.append((start, before, first, slope))
        length = (lines[i + 1][0] if i + 1 < len(lines) else num_steps) - start
        before = before + (length * first + slope * ((length * (length - 1)) >> 1))
    return pieces, before


def run_end_s(pieces: RunPieces, k: int) -> float:
    """End of step k (from 0) of the run, from its start (the run's end is that of its last step)."""
    i = len(pieces) - 1
    while pieces[i][0] > k:
        i -= 1
    start, before, first, slope = pieces[i]
    j = k - start
    return before + ((j + 1) * first + slope * ((j * (j + 1)) >> 1))


def steps_ending_before(pieces: RunPieces, num_steps: int, x: float) -> int:
    """How many of the run's `num_steps` steps end strictly before `x` seconds from its start."""
    last = len(pieces) - 1
    i = 0
    while i < last and pieces[i + 1][1] < x:  # every step of piece i ends before x
        i += 1
    start, before, first, slope = pieces[i]
    room = (pieces[i + 1][0] if i < last else num_steps) - start
    # The ends are a quadratic in j (run_end_s); start from its root (the cancellation-free form),
    # then move to the exact count, evaluating the ends exactly as run_end_s does.
    y = x - before
    b = first + 0.5 * slope
    disc = b * b + 2.0 * slope * (y - first)
    root = b + math.sqrt(disc) if disc >= 0.0 else 0.0
    guess = 2.0 * (y - first) / root if root > 0.0 else (y / first - 1.0 if first > 0.0 else 0.0)
    j = room if guess >= room else int(guess) if guess > 0.0 else 0
    while j > 0 and before + (j * first + slope * (((j - 1) * j) >> 1)) >= x:
        j -= 1
    while j < room and before + ((j + 1) * first + slope * ((j * (j + 1)) >> 1)) < x:
        j += 1
    return start + j


class WorkerState(enum.IntEnum):
    """Worker lifecycle, in order: STARTING → READY → (DRAINING →) STOPPED."""

    STARTING = 0  # cold start / provisioning: billed, takes no requests
    READY = 1  # takes requests
    DRAINING = 2  # finishes what it holds, takes no new requests, then stops
    STOPPED = 3


class WorkerHost(Protocol):
    """What a replica needs from the fleet it serves in, and the three things it reports to it.

    The fleet implements it (`planner.sim.fleet.Fleet`); the replica never reads the fleet's
    other state. The time series are plain lists the replica adds to (the hot path).
    """

    env: simpy.Environment
    setup: ReplicaSetup
    scheduler_config: SchedulerConfig
    jump: bool
    series_bin_s: float
    batch_area: list[float]  # per bin: running sequences x seconds, summed over workers
    blocks_area: list[float]  # per bin: used KV blocks x seconds
    num_preemptions: int

    def grow_series(self, num_bins: int) -> None:
        """Extend batch_area/blocks_area to `num_bins` bins (a step started past their end)."""

    def worker_ready(self, worker: "Replica") -> None:
        """Called once, when `worker` finishes starting (not for a worker created ready)."""

    def worker_stopped(self, worker: "Replica") -> None:
        """Called once, when `worker` stops."""

    def requests_finished(self, worker: "Replica", finished: list[Request]) -> None:
        """Called after each step that produced the last token of some requests."""


class Replica:
    """A worker: one engine replica (Scheduler → KVCacheManager → BlockPool) and its SimPy process.

    Attributes read by the fleet, routers and autoscalers:
        worker_id, kind ("pod" | "active" | "flex"), gpus, state, num_outstanding (requests
        dispatched here and not finished: waiting + running), idle_since (time it last became
        idle, None while it holds requests), max_outstanding (None = no cap; a cap makes it a
        pull-style worker that takes a new request only below the cap), started_at, ready_at,
        stopped_at, busy_s (seconds spent executing steps), num_served.
    """

    def __init__(
        self,
        fleet: WorkerHost,
        worker_id: int,
        kind: str,
        ready_delay_s: float,
        gpus: int,
        max_outstanding: int | None,
    ):
        setup = fleet.setup
        self.fleet = fleet
        self.env: simpy.Environment = fleet.env
        self.worker_id = worker_id
        self.kind = kind
        self.gpus = gpus
        self.max_outstanding = max_outstanding
        self.config: SchedulerConfig = fleet.scheduler_config
        self.scheduler = Scheduler(self.config, KVCacheManager(BlockPool(setup.num_gpu_blocks), self.config.block_size))
        self.step_model = setup.step_model
        self.jump = fleet.jump
        # A worker with no start-up delay is ready at once, so requests can be dispatched to it
        # in the same instant (pods present from t = 0).
        self._ready_delay_s = max(0.0, float(ready_delay_s))
        self.state = WorkerState.READY if self._ready_delay_s == 0 else WorkerState.STARTING
        self.num_outstanding = 0
        self.num_served = 0
        self.started_at = self.env.now
        self.ready_at = self.env.now if self.state == WorkerState.READY else float("nan")
        self.stopped_at = float("nan")
        self.idle_since: float | None = self.env.now
        self.busy_s = 0.0
        self._idle_event: simpy.Event | None = None
        # While a multi-step decode run is in flight (_run_len > 0): its start time, its length,
        # and its step end offsets from the start: an array (_run_ends), or, from a model that
        # gives the run's step times as lines, those lines in closed form (_run_pieces: per piece,
        # its first step, the end of the step before it, its first step's seconds, the increase
        # per step).
        self._run_t0 = 0.0
        self._run_ends: np.ndarray | None = None
        self._run_pieces: RunPieces = []
        self._run_steps = 0  # 0 once an arrival has cut the run
        self._run_len = 0  # the run's planned length, while it is in flight
        self._cut_steps = 0  # set by an arrival that interrupts the run
        # Steps an arrival waits beyond the one in progress: 1 with async scheduling.
        self._admission_lag = 2 if self.config.async_scheduling else 1
        self._plans = 0  # steps planned so far (a decode run counts its steps once it ends)
        self.process = self.env.process(self._run())

    # --- called by the fleet ---------------------------------------------------------------
    @property
    def accepts(self) -> bool:
        """Ready, not draining, and below its outstanding cap (if any)."""
        return self.state == WorkerState.READY and (
            self.max_outstanding is None or self.num_outstanding < self.max_outstanding
        )

    def add_request(self, request: Request) -> None:
        """Take a dispatched request into this engine's waiting queue."""
        scheduler = self.scheduler
        was_waiting = bool(scheduler.waiting)
        request.replica_id = self.worker_id
        if self._admission_lag == 2:
            request.queued_plan = self._queued_plan()
        scheduler.add_request(request)
        self.num_outstanding += 1
        self.idle_since = None
        if self._idle_event is not None:
            if not self._idle_event.triggered:
                self._idle_event.succeed()
            return
        # An arrival behind a blocked queue head, or into a full batch, changes nothing in the
        # planned run, so only a request that could be admitted at the next boundary cuts it.
        if self._run_steps and not was_waiting and len(scheduler.running) < self.config.max_num_seqs:
            # Steps ending strictly before now are done; the one in progress (or ending exactly
            # now) completes; the request joins at the boundary after it, or, with async
            # scheduling, after the step already planned behind it.
            now = self.env.now
            done = self._steps_ending_before(now - self._run_t0) + self._admission_lag
            if done < self._run_steps:
                self._cut_steps = done
                self._run_steps = 0
                wake_earlier(self.env, self.process, max(0.0, self._run_t0 + self._run_end_s(done - 1) - now))

    def _queued_plan(self) -> int:
        """Steps planned so far, counting the started steps of a decode run in flight.

        What matters is which plans come after the request: the ones at the run's remaining
        boundaries and later. Every boundary of the run (as cut, if an arrival cut it) but the
        last comes after the next step is planned, so a request that came before the run's last
        step is visible at the run's end whichever step it came in: only the last step needs
        telling apart (no search for the step in progress per arrival).
        """
        if not self._run_len:
            return self._plans
        steps = self._cut_steps or self._run_len
        if steps > 1 and self.env.now - self._run_t0 > self._run_end_s(steps - 2):
            return self._plans + steps - 1
        return self._plans

    def _run_end_s(self, k: int) -> float:
        """End of step k (from 0) of the decode run in flight, from its start."""
        ends = self._run_ends
        return float(ends[k]) if ends is not None else run_end_s(self._run_pieces, k)

    def _steps_ending_before(self, x: float) -> int:
        """How many steps of the run in flight end strictly before `x` seconds from its start."""
        ends = self._run_ends
        if ends is not None:
            return int(ends.searchsorted(x, side="left"))
        return steps_ending_before(self._run_pieces, self._run_len, x)

    def request_stop(self) -> None:
        """Stop now if idle or still starting; otherwise drain (no new requests) and stop when empty."""
        if self.state == WorkerState.STOPPED:
            return
        if self.state == WorkerState.STARTING or self.num_outstanding == 0:
            self._stop()
        else:
            self.state = WorkerState.DRAINING

    # --- internals ----------------------------------------------------------------------------
    def _stop(self) -> None:
        self.state = WorkerState.STOPPED
        self.stopped_at = self.env.now
        if self._idle_event is not None and not self._idle_event.triggered:
            self._idle_event.succeed()
        self.fleet.worker_stopped(self)

    def _run(self):
        env = self.env
        if self.state == WorkerState.STARTING:
            yield env.timeout(self._ready_delay_s)
            if self.state == WorkerState.STOPPED:
                return  # stopped while starting
            self.state = WorkerState.READY
            self.ready_at = env.now
            self.fleet.worker_ready(self)
        scheduler = self.scheduler
        step_model = self.step_model
        decode_run_seconds = step_model.decode_run_seconds
        step_seconds = step_model.step_seconds
        pool = scheduler.kv.block_pool
        fleet = self.fleet
        bin_s = fleet.series_bin_s
        batch_area, blocks_area = fleet.batch_area, fleet.blocks_area
        jump = self.jump
        asarray = np.asarray
        timeout = env.timeout
        # A model whose decode cost depends on the contexts only through their count and sum
        # (planner.perf.StepTimeModel without sliding-window layers) takes those two numbers: the
        # scheduler keeps the sum, and no context array is built.
        summed = bool(getattr(step_model, "decode_depends_on_context_sum", False))
        if summed:
            decode_run_pieces = step_model.decode_run_pieces
            step_seconds_summed = step_model.step_seconds_summed
        # With async scheduling vLLM plans a step when the one before it starts, so it admits only
        # the requests received before that plan; after an idle spell nothing was planned ahead.
        lagged = self.config.async_scheduling
        busy = False
        while True:
            if not scheduler.running and not scheduler.waiting:
                if self.state != WorkerState.READY:
                    if self.state == WorkerState.DRAINING:
                        self._stop()
                    return
                self._idle_event = env.event()
                yield self._idle_event
                self._idle_event = None
                busy = False
                continue
            t0 = env.now
            out = scheduler.schedule(t0, self._plans if lagged and busy else None)
            if out.held_back and not out.num_decoders and not out.scheduled:
                # The planned step would be empty: the engine sits idle until the step in flight
                # ends and then schedules the new request at once (vLLM skips empty steps).
                out = scheduler.schedule(t0, None)
            self._plans += 1
            busy = True
            if not out.num_decoders and not out.scheduled:
                # Impossible with a valid SchedulerConfig and arrival checks; never spin forever.
                raise RuntimeError(f"worker {self.worker_id}: the scheduler can make no progress at t={t0}")
            num_running = len(scheduler.running)
            used_blocks = pool.num_gpu_blocks - pool.num_free_blocks
            # A held-back request joins at the next boundary: no run past it.
            num_steps = scheduler.uniform_decode_steps(out) if jump and not out.held_back else 1
            if num_steps > 1:
                if summed:
                    # Steps growing linearly, piece by piece: the run's ends in closed form, no array.
                    self._run_ends = None
                    self._run_pieces, end_s = run_pieces(
                        decode_run_pieces(out.num_decodes, out.decode_context_sum, num_steps), num_steps)
                else:
                    self._run_ends = ends = decode_run_seconds(asarray(out.decode_context_lens), num_steps).cumsum()
                    end_s = float(ends[-1])
                self._run_t0, self._run_steps, self._run_len = t0, num_steps, num_steps
                self._cut_steps = 0
                yield timeout(end_s)  # an arrival may move this wake-up earlier
                done = self._cut_steps
                if done:
                    duration = self._run_end_s(done - 1)
                else:
                    done, duration = num_steps, end_s
                self._plans += done - 1
                self._run_steps = self._run_len = 0
                self._run_ends = None
                finished = scheduler.update_after_decode_run(done, env.now)
            else:
                if summed:
                    duration = step_seconds_summed(out.num_decodes, out.decode_context_sum, out.prefill_chunks)
                else:
                    duration = step_seconds(asarray(out.decode_context_lens), out.prefill_chunks)
                yield timeout(duration)
                finished = scheduler.update_from_output(out, env.now)
            self.busy_s += duration
            # Time-weighted batch size and KV use: the segment's time goes to the bins it covers
            # (a long decode run, or a slow step of an overloaded replica, spans several bins;
            # crediting it all to its first bin put more than the bin's time in it).
            b = int(t0 / bin_s)
            if (b + 1) * bin_s >= t0 + duration:
                if b >= len(batch_area):
                    fleet.grow_series(b + 1)
                batch_area[b] += num_running * duration
                blocks_area[b] += used_blocks * duration
            else:
                fleet.spread_series(t0, duration, num_running, used_blocks)
            if out.num_preempted:
                fleet.num_preemptions += out.num_preempted
            if finished:
                self.num_outstanding -= len(finished)
                self.num_served += len(finished)
                if self.num_outstanding == 0:
                    self.idle_since = env.now
                fleet.requests_finished(self, finished)
