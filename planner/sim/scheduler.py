"""FCFS continuous-batching scheduler of one replica (vLLM v1's `Scheduler`, timing-relevant part).

The scheduler owns the waiting queue and the running set and decides, once per engine step, how
many tokens each request computes. The KV cache manager turns those tokens into blocks; the
replica process (replica.py) asks the step-time model how long the step takes and then calls
`update_from_output`. No SimPy here: this module is plain state, testable by hand.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from planner.errors import PlannerError
from planner.sim.kv_cache_manager import KVCacheManager
from planner.sim.request import Request, RequestStatus


ASYNC_SCHEDULING_NOTE = ("the simulated engine schedules as vLLM does with --async-scheduling (which the deploy "
                         "files pass): a request received during a step is first scheduled in the step after next")
SYNC_SCHEDULING_NOTE = ("off (serving.async_scheduling: false; the deploy files pass --no-async-scheduling): a request "
                        "joins the next step, but the engine's host work between steps, which the step-time model "
                        "does not count, makes every step longer than simulated")


@dataclass(frozen=True)
class SchedulerConfig:
    """The engine limits the scheduler obeys (vLLM's names)."""

    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    block_size: int = 16
    enable_chunked_prefill: bool = True
    # vLLM's --async-scheduling (on by default in recent releases, and in the deploy files): the
    # engine plans step k + 1 while step k runs, so a request received during step k is first
    # scheduled in step k + 2 (vllm/v1/engine/core.py, step_with_batch_queue).
    async_scheduling: bool = True

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "max_model_len", "block_size"):
            if getattr(self, name) < 1:
                raise PlannerError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_num_batched_tokens < self.max_num_seqs:
            # vLLM refuses this too: a full batch of decodes would not fit one step.
            raise PlannerError(
                f"max_num_batched_tokens ({self.max_num_batched_tokens}) is smaller than max_num_seqs "
                f"({self.max_num_seqs}); raise max_num_batched_tokens or lower max_num_seqs"
            )
        if not self.enable_chunked_prefill and self.max_num_batched_tokens < self.max_model_len:
            # vLLM refuses this too: a long prompt could never be scheduled.
            raise PlannerError(
                f"max_num_batched_tokens ({self.max_num_batched_tokens}) is smaller than max_model_len "
                f"({self.max_model_len}) with chunked prefill off; raise it or enable chunked prefill"
            )

    @classmethod
    def from_engine_args(cls, engine_args: Any) -> "SchedulerConfig":
        """Read the limits from planner.memory.EngineArgs (or anything with the same attributes)."""
        return cls(
            max_num_seqs=int(engine_args.max_num_seqs),
            max_num_batched_tokens=int(engine_args.max_num_batched_tokens),
            max_model_len=int(engine_args.max_model_len),
            block_size=int(getattr(engine_args, "block_size", 16)),
            enable_chunked_prefill=bool(getattr(engine_args, "enable_chunked_prefill", True)),
            async_scheduling=bool(getattr(engine_args, "async_scheduling", True)),
        )


class SchedulerOutput:
    """What one step computes.

    `num_decoders` running decoders (the scheduler's lazy prefix, see Scheduler) each compute
    one token; `scheduled[i]` (the other requests: prefills, or everyone in a step planned
    request by request) computes `num_new_tokens[i]`. `decode_context_lens` / `prefill_chunks`
    are the step-time model's inputs (planner.perf's convention): the tokens already in the KV
    cache of every one-token (decode) entry (the step attends over them plus the new token), and
    (chunk_tokens, tokens_already_computed) for every multi-token (prefill) entry.
    `num_decodes` / `decode_context_sum` are the count and integer sum of `decode_context_lens`,
    which a step model whose decode cost depends on nothing else takes instead of the array
    (built only when read: read it before the step is applied).
    """

    __slots__ = (
        "num_decoders",
        "scheduled",
        "num_new_tokens",
        "_contexts",
        "_bases",
        "_clock",
        "num_decodes",
        "decode_context_sum",
        "prefill_chunks",
        "num_preempted",
        "num_admitted",
        "by_request",
        "held_back",
    )

    def __init__(self) -> None:
        self.num_decoders = 0
        self.scheduled: list[Request] = []
        self.num_new_tokens: list[int] = []
        # one-token entries outside the lazy decoders; the decoders' contexts are _bases + _clock
        self._contexts: list[int] = []
        self._bases: list[int] | None = None
        self._clock = 0
        self.num_decodes = 0
        self.decode_context_sum = 0
        self.prefill_chunks: list[tuple[int, int]] = []
        self.num_preempted = 0
        self.num_admitted = 0
        self.by_request = False  # planned request by request (a KV shortage or a tight budget)
        # The waiting head could have joined but came after this step was planned (async
        # scheduling): it joins at the next step boundary.
        self.held_back = False

    @property
    def decode_context_lens(self) -> np.ndarray | list[int]:
        """The decode entries' contexts: the lazy decoders' first, then the others."""
        bases = self._bases
        if not bases:
            return self._contexts
        if len(bases) < 8:
            clock = self._clock
            return [b + clock for b in bases] + self._contexts
        ctx = np.array(bases, dtype=np.int64)
        ctx += self._clock
        return np.concatenate((ctx, self._contexts)) if self._contexts else ctx

    def add(self, request: Request, num_new: int, decode_contexts: list[int]) -> None:
        """Schedule `num_new` tokens of `request`: a decode (one token) or a prefill chunk."""
        self.scheduled.append(request)
        self.num_new_tokens.append(num_new)
        if num_new == 1:
            decode_contexts.append(request.num_computed_tokens)
        else:
            self.prefill_chunks.append((num_new, request.num_computed_tokens))


class Scheduler:
    """Waiting queue (FCFS deque, preempted requests at its front) and running list (admission order).

    Running requests in steady decode advance in lockstep, one token per step, so their counters
    are kept relative to a step clock instead of being updated one by one (what makes a step
    O(1) in Python whatever the batch size). They form a prefix of `running` (a request still
    prefilling is always newer than every decoding one: a newer request is only admitted once
    the older prompts are complete), the "decoders": decoder i has
        num_computed_tokens = _bases[i] + _clock,  num_output_tokens = num_computed_tokens - prompt + 1,
        num_blocks = ceil(num_computed_tokens / block_size)
    and its Request's counters are stale until `_materialize` writes them (when it finishes,
    before a step planned request by request, and for inspection). Requests after the prefix
    (prefilling) are plain objects.
    """

    def __init__(self, config: SchedulerConfig, kv_cache_manager: KVCacheManager):
        self.config = config
        self.kv = kv_cache_manager
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []  # admission order: the last one is preempted first
        self.num_preemptions = 0
        self._clock = 0  # decode steps run so far
        self._bases: list[int] = []  # decoder i (running[i]): num_computed_tokens - _clock
        self._sum_bases = 0  # sum(_bases)
        self._residues = [0] * self.kv.block_size  # decoders per _bases[i] % block_size
        # (clock value at which it produces its last token, req_id, request), min first
        self._finish_heap: list[tuple[int, int, Request]] = []

    def add_request(self, request: Request) -> None:
        request.status = RequestStatus.WAITING
        self.waiting.append(request)

    @property
    def num_decoders(self) -> int:
        return len(self._bases)

    def schedule(self, now: float, visible_below: int | None = None) -> SchedulerOutput:
        """Plan one engine step starting at `now`.

        Only waiting requests with `queued_plan < visible_below` may be admitted (None: all):
        with async scheduling the replica passes the number of steps planned before this one
        was, in vLLM, planned (when the previous step started).

        Algorithm (vLLM v1, FCFS): with a budget of max_num_batched_tokens, first give every
        running request the tokens it lacks (one for a decode, the rest of its prompt for a
        prefill, capped by the budget), allocating their KV slots; when a slot cannot be
        allocated, preempt the newest running request and retry. Then, only if nobody was
        preempted, admit waiting requests in order while the budget, max_num_seqs and free blocks
        allow, chunking the last prefill to the budget (stop at the first that does not fit).

        The common case is planned in bulk: all decoders fit the budget and, with the prefills
        behind them, the free blocks; the decoders needing a new block this step are counted by
        residue class. Otherwise (a shortage that preempts, or a budget smaller than the batch)
        the step is planned request by request, exactly as written above.
        """
        cfg = self.config
        bs = self.kv.block_size
        running = self.running
        n_dec = len(self._bases)
        token_budget = cfg.max_num_batched_tokens - n_dec
        if token_budget < 0:
            return self._schedule_by_request(now, visible_below)
        # Decoders whose next token starts a new block: num_computed_tokens % bs == 0.
        blocks_needed = self._residues[-self._clock % bs] if n_dec else 0
        prefills: list[tuple[Request, int, int]] = []  # (request, num_new, blocks)
        for request in running[n_dec:] if n_dec < len(running) else ():  # at most one partial prefill
            if token_budget <= 0:
                break
            computed = request.num_computed_tokens
            num_new = request.num_prompt_tokens + request.num_output_tokens - computed
            if num_new > token_budget:
                num_new = token_budget
            blocks = -(-(computed + num_new) // bs) - request.num_blocks
            if blocks > 0:
                blocks_needed += blocks
            prefills.append((request, num_new, blocks))
            token_budget -= num_new
        # Most steps need no new block (a decoder crosses a block boundary once per block_size
        # steps): skip the call then.
        if (blocks_needed or prefills) and not self.kv.allocate_bulk(blocks_needed, prefills):
            return self._schedule_by_request(now, visible_below)
        out = SchedulerOutput()
        out.num_decoders = n_dec
        extra_contexts = out._contexts
        for request, num_new, _ in prefills:
            out.add(request, num_new, extra_contexts)
        if self.waiting:
            token_budget = self._admit_waiting(out, token_budget, now, extra_contexts, visible_below)
        clock = self._clock
        out._bases, out._clock = self._bases, clock
        if extra_contexts:
            out.num_decodes = n_dec + len(extra_contexts)
            out.decode_context_sum = self._sum_bases + n_dec * clock + sum(extra_contexts)
        else:
            out.num_decodes = n_dec
            out.decode_context_sum = self._sum_bases + n_dec * clock
        assert token_budget >= 0 and len(running) <= cfg.max_num_seqs
        return out

    def _admit_waiting(self, out: SchedulerOutput, token_budget: int, now: float, contexts: list[int],
                       visible_below: int | None) -> int:
        """Admit waiting requests (FCFS, no skipping); one-token entries' contexts go to `contexts`."""
        cfg = self.config
        waiting = self.waiting
        running = self.running
        while waiting and token_budget > 0 and len(running) < cfg.max_num_seqs:
            request = waiting[0]
            if visible_below is not None and request.queued_plan >= visible_below:
                out.held_back = True
                break
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
            out.add(request, num_new, contexts)
            token_budget -= num_new
        return token_budget

    # --- the step planned request by request ----------------------------------------------
    def _schedule_by_request(self, now: float, visible_below: int | None) -> SchedulerOutput:
        """vLLM's loop, one request at a time (used when a block is short or the budget is tight)."""
        self._materialize_all()
        out = SchedulerOutput()
        out.by_request = True
        token_budget = self.config.max_num_batched_tokens
        running = self.running
        contexts: list[int] = []
        i = 0
        while i < len(running) and token_budget > 0:
            request = running[i]
            num_new = min(request.num_prompt_tokens + request.num_output_tokens - request.num_computed_tokens, token_budget)
            if self.kv.allocate_slots(request, num_new) is None and not self._preempt_until_allocated(request, num_new, out):
                break  # it preempted itself: nobody after it is left
            out.add(request, num_new, contexts)
            token_budget -= num_new
            i += 1
        if not out.num_preempted:
            token_budget = self._admit_waiting(out, token_budget, now, contexts, visible_below)
        out._contexts = contexts
        out.num_decodes = len(contexts)
        out.decode_context_sum = sum(contexts)
        assert token_budget >= 0 and len(running) <= self.config.max_num_seqs
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

    # --- lazy decoders ---------------------------------------------------------------------
    def _materialize(self, request: Request, base: int) -> None:
        """Write a decoder's counters into its Request."""
        computed = base + self._clock
        request.num_computed_tokens = computed
        request.num_output_tokens = computed - request.num_prompt_tokens + 1
        self.kv.sync_blocks(request, computed)

    def _materialize_all(self) -> None:
        """Turn every decoder back into a plain object (before a step planned request by request)."""
        for request, base in zip(self.running, self._bases):
            self._materialize(request, base)
        self._bases.clear()
        self._sum_bases = 0
        self._residues = [0] * self.kv.block_size
        self._finish_heap.clear()

    def _make_decoder(self, request: Request) -> None:
        """A request whose prefill just completed (and not finished) joins the decoders."""
        base = request.num_computed_tokens - self._clock
        self._bases.append(base)
        self._sum_bases += base
        self._residues[base % self.kv.block_size] += 1
        finish_clock = request.num_prompt_tokens + request.max_output_tokens - 1 - base
        heapq.heappush(self._finish_heap, (finish_clock, request.req_id, request))

    def materialize(self) -> None:
        """Bring every running request's counters up to date (for inspection; the state stays lazy)."""
        for request, base in zip(self.running, self._bases):
            self._materialize(request, base)

    # --- after a step -----------------------------------------------------------------------
    def update_from_output(self, out: SchedulerOutput, now: float) -> list[Request]:
        """Apply a finished step ending at `now`: advance counters, sample tokens, retire finished.

        Returns:
            The requests that produced their last token in this step (their blocks are freed).
        """
        finished: list[Request] = []
        if out.num_decoders:
            self._clock += 1
            if self._finish_heap[0][0] <= self._clock:
                self._pop_finished_decoders(finished)
        new_decoders = []
        num_finished_decoders = len(finished)
        for request, num_new in zip(out.scheduled, out.num_new_tokens):
            request.num_computed_tokens += num_new
            if request.num_computed_tokens == request.num_prompt_tokens + request.num_output_tokens:
                # The step reached the end of its known tokens, so it samples the next one.
                request.num_output_tokens += 1
                if request.num_output_tokens == 1:
                    request.first_token_at = now
                if request.num_output_tokens >= request.max_output_tokens:
                    finished.append(request)
                elif not out.by_request:
                    new_decoders.append(request)
        if finished:
            self._retire(finished, now)
            # Decoders left `running` as they finished; the others are still in it.
            if out.by_request:
                self.running = [r for r in self.running if r.status == RequestStatus.RUNNING]
            else:
                for request in finished[num_finished_decoders:]:
                    self.running.remove(request)
        if out.by_request:
            self._rebuild_decoders()
        else:
            for request in new_decoders:
                self._make_decoder(request)
        return finished

    def _pop_finished_decoders(self, finished: list[Request]) -> None:
        heap = self._finish_heap
        clock = self._clock
        while heap and heap[0][0] <= clock:
            _, _, request = heapq.heappop(heap)
            i = self.running.index(request)
            base = self._bases.pop(i)
            self._sum_bases -= base
            self._residues[base % self.kv.block_size] -= 1
            self._materialize(request, base)
            del self.running[i]
            finished.append(request)

    def _retire(self, finished: list[Request], now: float) -> None:
        for request in finished:
            request.status = RequestStatus.FINISHED
            request.finished_at = now
            self.kv.free(request)

    def _rebuild_decoders(self) -> None:
        """After a step planned request by request: the decoding prefix of `running` goes lazy again."""
        assert not self._bases
        for request in self.running:
            if request.num_output_tokens == 0 or request.num_computed_tokens != request.num_prompt_tokens + request.num_output_tokens - 1:
                break
            self._make_decoder(request)
        assert all(
            r.num_output_tokens == 0 or r.num_computed_tokens != r.num_prompt_tokens + r.num_output_tokens - 1
            for r in self.running[len(self._bases):]
        ), "decoding requests must form a prefix of the running list"

    # --- jump mode -------------------------------------------------------------------------
    def uniform_decode_steps(self, out: SchedulerOutput) -> int:
        """How many consecutive steps, starting with the planned one `out`, repeat its schedule.

        A step in which every running request is a decoder (nobody prefilling, admitted or
        preempted) repeats identically until a request finishes or a block allocation would
        fail: the waiting head that could not be admitted stays blocked (same running count and
        budget, free blocks only shrink), and arrivals interrupt the jump from outside. Returns
        1 when `out` is not such a step.
        """
        if out.by_request or out.scheduled or out.num_decoders != len(self.running) or not out.num_decoders:
            return 1
        num_steps = self._finish_heap[0][0] - self._clock  # the step that finishes the first one
        if num_steps <= 1:
            return 1
        return self._steps_within_free_blocks(num_steps)

    def _blocks_for_steps(self, first_clock: int, num_steps: int) -> int:
        """Blocks the decoders take over `num_steps` steps run at clock values first_clock, first_clock + 1, ...

        At clock x, a decoder with base b needs a block when (b + x) % block_size == 0; any
        block_size consecutive steps cost exactly one block per decoder.
        """
        bs = self.kv.block_size
        cycles, rest = divmod(num_steps, bs)
        need = cycles * len(self._bases)
        if rest:
            # Clocks first_clock .. first_clock + rest - 1 hit residues -first_clock, -first_clock - 1,
            # ... (mod bs): one contiguous, wrapping range of the residue counts.
            residues = self._residues
            start = (-first_clock - rest + 1) % bs
            end = start + rest
            need += sum(residues[start:end]) if end <= bs else sum(residues[start:]) + sum(residues[: end - bs])
        return need

    def _steps_within_free_blocks(self, num_steps: int) -> int:
        """Largest k <= num_steps such that steps 2..k of the run fit in the free blocks (step 1 is planned)."""
        bs = self.kv.block_size
        free = self.kv.block_pool.num_free_blocks
        n_dec = len(self._bases)
        if n_dec * -(-(num_steps - 1) // bs) <= free:
            return num_steps
        # Whole cycles of block_size steps first (n_dec blocks each), then step by step.
        cycles = min((num_steps - 1) // bs, free // n_dec)
        used, extra = cycles * n_dec, cycles * bs
        residues = self._residues
        first = self._clock + 1
        while extra < num_steps - 1:
            cost = residues[-(first + extra) % bs]
            if used + cost > free:
                break
            used += cost
            extra += 1
        return extra + 1

    def update_after_decode_run(self, num_steps: int, now: float) -> list[Request]:
        """Apply `num_steps` completed steps of a uniform decode run (see uniform_decode_steps).

        Every decoder computed and sampled one token per step; the blocks steps 2..num_steps
        needed (known to fit) are taken, and finished ones retire.
        """
        if num_steps > 1:
            taken = self.kv.take_decoder_blocks(self._blocks_for_steps(self._clock + 1, num_steps - 1))
            assert taken, "jump planned past the free KV blocks"
        self._clock += num_steps
        finished: list[Request] = []
        if self._finish_heap[0][0] <= self._clock:
            self._pop_finished_decoders(finished)
            self._retire(finished, now)
        return finished
