"""FCFS continuous-batching scheduler of one replica (vLLM v1's `Scheduler`, timing-relevant part).

The scheduler owns the waiting queue and the running set and decides, once per engine step, how
many tokens each request computes. The KV cache manager turns those tokens into blocks; the
replica process (replica.py) asks the step-time model how long the step takes and then calls
`update_from_output`. No SimPy here: this module is plain state, testable by hand.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from planner.sim.kv_cache_manager import KVCacheManager
from planner.sim.request import Request, RequestStatus


@dataclass(frozen=True)
class SchedulerConfig:
    """The engine limits the scheduler obeys (vLLM's names)."""

    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    block_size: int = 16
    enable_chunked_prefill: bool = True

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "max_model_len", "block_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_engine_args(cls, engine_args: Any) -> "SchedulerConfig":
        """Read the limits from planner.memory.EngineArgs (or anything with the same attributes)."""
        return cls(
            max_num_seqs=int(engine_args.max_num_seqs),
            max_num_batched_tokens=int(engine_args.max_num_batched_tokens),
            max_model_len=int(engine_args.max_model_len),
            block_size=int(getattr(engine_args, "block_size", 16)),
            enable_chunked_prefill=bool(getattr(engine_args, "enable_chunked_prefill", True)),
        )


class SchedulerOutput:
    """What one step computes: parallel lists `scheduled[i]` gets `num_new_tokens[i]` tokens.

    `decode_context_lens` / `prefill_chunks` are the step-time model's inputs (planner.perf's
    convention): one entry per single-token (decode) request, the tokens already in its KV cache
    (the step attends over them plus the new token); one (chunk_tokens, tokens_already_computed)
    pair per multi-token (prefill) request.
    """

    __slots__ = (
        "scheduled",
        "num_new_tokens",
        "decode_context_lens",
        "prefill_chunks",
        "num_preempted",
        "num_admitted",
        "min_output_left",
    )

    def __init__(self) -> None:
        self.scheduled: list[Request] = []
        self.num_new_tokens: list[int] = []
        self.decode_context_lens: list[int] = []
        self.prefill_chunks: list[tuple[int, int]] = []
        self.num_preempted = 0
        self.num_admitted = 0
        self.min_output_left = 0  # fewest output tokens due among running decodes (0: a first token is due)

    @property
    def num_scheduled_tokens(self) -> int:
        return sum(self.num_new_tokens)


class Scheduler:
    """Waiting queue (FCFS deque, preempted requests at its front) and running list (admission order)."""

    def __init__(self, config: SchedulerConfig, kv_cache_manager: KVCacheManager):
        self.config = config
        self.kv = kv_cache_manager
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []  # admission order: the last one is preempted first
        self.num_preemptions = 0

    def add_request(self, request: Request) -> None:
        request.status = RequestStatus.WAITING
        self.waiting.append(request)

    @property
    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    def schedule(self, now: float) -> SchedulerOutput:
        """Plan one engine step starting at `now`.

        Algorithm (vLLM v1, FCFS): with a budget of max_num_batched_tokens, first give every
        running request the tokens it lacks (one for a decode, the rest of its prompt for a
        prefill, capped by the budget), allocating their KV slots; when a slot cannot be
        allocated, preempt the newest running request and retry. Then, only if nobody was
        preempted, admit waiting requests in order while the budget, max_num_seqs and free blocks
        allow, chunking the last prefill to the budget (stop at the first that does not fit).
        """
        cfg = self.config
        out = SchedulerOutput()
        token_budget = cfg.max_num_batched_tokens
        running = self.running
        pool = self.kv.block_pool
        bs = self.kv.block_size
        scheduled, num_new_tokens = out.scheduled, out.num_new_tokens
        decode_context_lens = out.decode_context_lens
        min_left = 1 << 62
        prefill_chunks = out.prefill_chunks
        i = 0  # running requests scheduled so far
        # Fast pass while every allocation succeeds. NOTE: KVCacheManager.allocate_slots and
        # BlockPool.take are inlined here: this loop runs for every running request at every step
        # and is the simulator's hottest code. On the first shortage it hands over to the
        # careful loop below, which preempts.
        if token_budget > 0:
            for request in running:
                computed = request.num_computed_tokens
                num_new = request.num_prompt_tokens + request.num_output_tokens - computed
                if num_new > token_budget:
                    num_new = token_budget
                needed = -(-(computed + num_new) // bs) - request.num_blocks
                if needed > 0:
                    if needed > pool.num_free_blocks:
                        break
                    pool.num_free_blocks -= needed
                    request.num_blocks += needed
                scheduled.append(request)
                num_new_tokens.append(num_new)
                if num_new == 1:
                    decode_context_lens.append(computed)
                    # Output tokens still due (0 if its first token is: that step is not uniform).
                    left = request.max_output_tokens - request.num_output_tokens if request.num_output_tokens else 0
                    if left < min_left:
                        min_left = left
                else:
                    prefill_chunks.append((num_new, computed))
                token_budget -= num_new
                i += 1
                if token_budget <= 0:
                    break
        while i < len(running) and token_budget > 0:
            request = running[i]
            num_new = min(request.num_prompt_tokens + request.num_output_tokens - request.num_computed_tokens, token_budget)
            if self.kv.allocate_slots(request, num_new) is None and not self._preempt_until_allocated(request, num_new, out):
                break  # it preempted itself: nobody after it is left
            self._add_to_output(out, request, num_new)
            if num_new == 1:
                left = request.max_output_tokens - request.num_output_tokens if request.num_output_tokens else 0
                min_left = min(min_left, left)
            token_budget -= num_new
            i += 1
        out.min_output_left = min_left
        if not out.num_preempted:
            token_budget = self._admit_waiting(out, token_budget, now)
        assert token_budget >= 0 and len(running) <= cfg.max_num_seqs
        assert len(out.scheduled) <= len(running)
        return out

    def _preempt_until_allocated(self, request: Request, num_new: int, out: SchedulerOutput) -> bool:
        """After a failed allocation, preempt the newest running requests until `request`'s slots fit.

        Returns False if `request` itself had to be preempted.
        """
        while True:
            victim = self.running.pop()
            self._preempt(victim)
            out.num_preempted += 1
            if victim is request:
                return False
            if self.kv.allocate_slots(request, num_new) is not None:
                return True

    def _preempt(self, request: Request) -> None:
        """Free a running request's blocks and put it at the front of the queue to recompute."""
        assert request.status == RequestStatus.RUNNING, "only running requests can be preempted"
        self.kv.free(request)
        request.status = RequestStatus.PREEMPTED
        request.num_computed_tokens = 0
        request.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(request)

    def _admit_waiting(self, out: SchedulerOutput, token_budget: int, now: float) -> int:
        cfg = self.config
        waiting = self.waiting
        running = self.running
        while waiting and token_budget > 0 and len(running) < cfg.max_num_seqs:
            request = waiting[0]
            num_new = request.num_prompt_tokens + request.num_output_tokens - request.num_computed_tokens
            if not cfg.enable_chunked_prefill and num_new > token_budget:
                break
            num_new = min(num_new, token_budget)
            if self.kv.allocate_slots(request, num_new) is None:
                break
            waiting.popleft()
            running.append(request)
            request.status = RequestStatus.RUNNING
            if math.isnan(request.admitted_at):
                request.admitted_at = now
            out.num_admitted += 1
            self._add_to_output(out, request, num_new)
            token_budget -= num_new
        return token_budget

    @staticmethod
    def _add_to_output(out: SchedulerOutput, request: Request, num_new: int) -> None:
        out.scheduled.append(request)
        out.num_new_tokens.append(num_new)
        if num_new == 1:
            # One query token over its context: the same work as a decode, whatever its phase.
            out.decode_context_lens.append(request.num_computed_tokens)
        else:
            out.prefill_chunks.append((num_new, request.num_computed_tokens))

    def update_from_output(self, out: SchedulerOutput, now: float) -> list[Request]:
        """Apply a finished step ending at `now`: advance counters, sample tokens, retire finished.

        Returns:
            The requests that produced their last token in this step (their blocks are freed).
        """
        finished: list[Request] = []
        for request, num_new in zip(out.scheduled, out.num_new_tokens):
            request.num_computed_tokens += num_new
            if request.num_computed_tokens == request.num_prompt_tokens + request.num_output_tokens:
                # The step reached the end of its known tokens, so it samples the next one.
                request.num_output_tokens += 1
                if request.num_output_tokens == 1:
                    request.first_token_at = now
                if request.num_output_tokens >= request.max_output_tokens:
                    finished.append(request)
        if finished:
            self._retire(finished, now)
        return finished

    def _retire(self, finished: list[Request], now: float) -> None:
        for request in finished:
            request.status = RequestStatus.FINISHED
            request.finished_at = now
            self.kv.free(request)
        self.running = [r for r in self.running if r.status == RequestStatus.RUNNING]

    # --- jump mode -------------------------------------------------------------------------
    def uniform_decode_steps(self, out: SchedulerOutput) -> int:
        """How many consecutive steps, starting with the planned one `out`, repeat its schedule.

        A step that only decodes (every running request gets one token, all past their first
        token, nobody admitted or preempted) repeats identically until a request finishes or a
        block allocation would fail: the waiting head that could not be admitted stays blocked
        (same running count and budget, free blocks only shrink), and arrivals interrupt the
        jump from outside. Returns 1 when `out` is not such a step.
        """
        if out.num_admitted or out.num_preempted or out.prefill_chunks or len(out.scheduled) != len(self.running):
            return 1
        num_steps = out.min_output_left
        if num_steps <= 1:
            return 1
        return self._steps_within_free_blocks(num_steps)

    def _steps_within_free_blocks(self, num_steps: int) -> int:
        """Largest k <= num_steps such that k decode steps need no more blocks than are free.

        Step 1's slots are already allocated; step j needs slots for num_computed + j tokens.
        """
        bs = self.kv.block_size
        free = self.kv.block_pool.num_free_blocks
        running = self.running
        # Cheap bound: each sequence needs at most ceil((k - 1) / bs) more blocks over k steps.
        if len(running) * -(-(num_steps - 1) // bs) <= free:
            return num_steps

        def need(k: int) -> int:
            return sum(-(-(r.num_computed_tokens + k) // bs) - r.num_blocks for r in running)

        lo, hi = 1, num_steps  # need(lo) == 0 <= free; find the largest k with need(k) <= free
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if need(mid) <= free:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def update_after_decode_run(self, num_steps: int, now: float) -> list[Request]:
        """Apply `num_steps` completed steps of a uniform decode run (see uniform_decode_steps).

        Every running request computed and sampled one token per step; their blocks are topped
        up to the slots the last step needed (known to fit), and finished ones retire.
        """
        bs = self.kv.block_size
        pool = self.kv.block_pool
        finished: list[Request] = []
        new_blocks = 0
        for request in self.running:
            computed = request.num_computed_tokens = request.num_computed_tokens + num_steps
            produced = request.num_output_tokens = request.num_output_tokens + num_steps
            needed = -(-computed // bs) - request.num_blocks
            if needed > 0:
                new_blocks += needed
                request.num_blocks += needed
            if produced >= request.max_output_tokens:
                finished.append(request)
        taken = pool.take(new_blocks)
        assert taken, "jump planned past the free KV blocks"
        if finished:
            self._retire(finished, now)
        return finished
