"""Re-run a `vllm bench serve` run in the simulator, as that client ran it.

`vllm bench serve` builds its request list, draws the send times (all at t = 0 for an infinite
`--request-rate`, else gamma inter-arrival times of shape `--burstiness` and mean 1/rate, rescaled
so the last one falls at num_requests / rate) and, with `--max-concurrency C`, holds each request
behind a client-side semaphore of C slots: a request is sent when it is due and a slot is free,
and its TTFT is timed from that send, not from when it was due.

- rate = inf with C: a closed loop of C users with no think time, replayed as the simulator's
  closed loop (planner.sim.closed_loop: the first wave at t = 0, each completion sends the next
  request in the file's order, which reaches the engine one step later, as a real client's does);
- a finite rate with C: a gamma process whose excess waits at the client, replayed on one replica
  whose `pod_max_outstanding` is C (the fleet queue is the semaphore, first come first served; a
  freed slot's next request is dispatched at the completion itself); the send time of each
  request is max(due time, the moment a slot freed), recovered from the simulated finish times;
- no C: the requests arrive when due.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.calibrate.bench_results import VllmBenchResult, request_latencies, request_lengths
from planner.errors import PlannerError
from planner.traffic.closed_loop import ClosedLoop, ClosedLoopDraws

METRICS: tuple[str, ...] = ("ttft", "tpot", "itl")
MS = 1e-3
DEFAULT_MAX_REQUESTS = 1000
# Timed arrivals are random: predictions average this many draws of them (vLLM's own draw is not
# in the file), which also smooths the fit's objective. Arrivals all at t = 0 need one.
DEFAULT_REALIZATIONS = 4


@dataclass(frozen=True)
class Replay:
    """One run, ready to simulate: its requests in send order and what was measured (seconds)."""

    source: str
    arrivals: tuple[np.ndarray, ...]  # send-due times, one array per drawn realization
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    max_concurrency: int | None
    measured: dict[str, float]
    lengths_source: str
    lengths_estimated: bool
    traffic: str
    notes: list[str] = field(default_factory=list)
    # The metrics the fit uses (the others are shown, not fitted: e.g. TTFT of a run whose
    # prompts were already in the server's prefix cache).
    fit_metrics: tuple[str, ...] = METRICS
    # Each replayed request's measured TTFT and decode time (s), when the file has them
    # (--save-detailed): the bootstrap resamples requests within the file.
    request_ttft_s: np.ndarray | None = None
    request_decode_s: np.ndarray | None = None


def send_times(num: int, rate_per_s: float | None, burstiness: float, rng: np.random.Generator) -> np.ndarray:
    """When vLLM's client makes each request due: all at 0 without a finite rate, else cumulative
    gamma(shape=burstiness, scale=1/(rate x burstiness)) gaps rescaled to end at num / rate."""
    if rate_per_s is None or num == 0:
        return np.zeros(num)
    gaps = rng.gamma(shape=burstiness, scale=1.0 / (rate_per_s * burstiness), size=num)
    due = np.cumsum(gaps)
    return due * ((num / rate_per_s) / due[-1])


def make_replay(run: VllmBenchResult, *, seed: int = 0, max_requests: int = DEFAULT_MAX_REQUESTS,
                realizations: int = DEFAULT_REALIZATIONS, metrics: tuple[str, ...] = METRICS) -> Replay:
    """The run as the simulator will replay it; the fit uses `metrics` of it.

    Requests beyond `max_requests` (at least 4 per client slot) are left out, the first ones
    kept: the mean latencies of a steady benchmark do not need thousands of simulated requests.

    Raises:
        PlannerError: the file lacks the mean TTFT/TPOT or any way to know the lengths.
    """
    run.require("mean_ttft_ms", "mean_tpot_ms")
    lengths = request_lengths(run)
    prompt = np.asarray(lengths.prompt_tokens, dtype=np.int64)
    output = np.asarray(lengths.output_tokens, dtype=np.int64)
    notes: list[str] = []
    keep = max(max_requests, 4 * (run.max_concurrency or 0))
    ttft_s, decode_s = request_latencies(run) if lengths.per_request else (None, None)
    if len(prompt) > keep:
        notes.append(f"replayed the first {keep} of {len(prompt)} requests")
        prompt, output = prompt[:keep], output[:keep]
        ttft_s = None if ttft_s is None else ttft_s[:keep]
        decode_s = None if decode_s is None else decode_s[:keep]
    rate = run.open_rate_per_s
    rng = np.random.default_rng(seed)
    draws = realizations if rate is not None else 1
    arrivals = tuple(send_times(len(prompt), rate, run.burstiness, rng) for _ in range(max(1, draws)))
    measured = {"ttft": run.mean_ttft_ms * MS, "tpot": run.mean_tpot_ms * MS}  # type: ignore[operator]
    if run.mean_itl_ms:
        measured["itl"] = run.mean_itl_ms * MS
    if not np.any(output > 1):
        measured.pop("tpot")
        measured.pop("itl", None)
    parts = []
    if rate is not None:
        parts.append(f"{rate:g} req/s" + ("" if run.burstiness == 1.0 else f", burstiness {run.burstiness:g}"))
    else:
        parts.append("all sent at once")
    if run.max_concurrency is not None:
        parts.append(f"at most {run.max_concurrency} in flight")
    return Replay(
        source=run.source, arrivals=arrivals, prompt_tokens=prompt, output_tokens=output,
        max_concurrency=run.max_concurrency, measured=measured, lengths_source=lengths.source,
        lengths_estimated=lengths.estimated, traffic=", ".join(parts), notes=notes,
        fit_metrics=tuple(m for m in METRICS if m in metrics), request_ttft_s=ttft_s, request_decode_s=decode_s,
    )


def semaphore_send_times(due_s: np.ndarray, finished_s: np.ndarray, slots: int | None) -> np.ndarray:
    """When each request got one of `slots` client slots, first come first served: its due time,
    or the finish of the request whose slot it took. No cap: the due times."""
    if slots is None:
        return due_s.copy()
    sent = np.empty_like(due_s)
    busy: list[float] = []  # finish times of the requests holding a slot (a min-heap)
    for i, (due, done) in enumerate(zip(due_s.tolist(), finished_s.tolist())):
        start = due
        if len(busy) >= slots:
            start = max(due, heapq.heappop(busy))
        sent[i] = start
        heapq.heappush(busy, done)
    return sent


@dataclass(frozen=True, eq=False)
class _FileLoop(ClosedLoop):
    """A closed loop that sends the file's requests in the file's order (no random sizes)."""

    prompt_list: tuple[int, ...] = ()
    output_list: tuple[int, ...] = ()

    def draws(self) -> ClosedLoopDraws:
        draws = ClosedLoopDraws(self)
        n = len(self.prompt_list)
        draws.prompt_tokens.extend(self.prompt_list)
        draws.output_tokens.extend(self.output_list)
        draws.think_s.extend([0.0] * n)
        draws.capped.extend(bytes(n))
        return draws


def _closed_loop(replay: Replay) -> ClosedLoop:
    from planner.inputs.traffic_sections import FixedSizes

    n = len(replay.prompt_tokens)
    return _FileLoop(
        users=int(replay.max_concurrency or 1), think=0.0, max_requests=n, source=replay.source,
        sizes=FixedSizes(distribution="fixed", prompt_tokens=1, output_tokens=1),  # unused: the file's lists
        prompt_list=tuple(int(x) for x in replay.prompt_tokens),
        output_list=tuple(int(x) for x in replay.output_tokens),
    )


@dataclass(frozen=True)
class _Workload:
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    horizon_s: float


def simulate_requests(replay: Replay, setup: Any, realization: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each request's simulated TTFT (from its send) and decode time (first to last token), seconds,
    for one drawn realization of the arrivals.

    Raises:
        PlannerError: some request could not be served (too long for max_model_len or the KV cache).
    """
    from planner.sim import simulate
    from planner.sim.spec import FleetSpec

    due = replay.arrivals[realization]
    closed = replay.max_concurrency is not None and not np.any(due)
    if closed:
        outcome = simulate(_closed_loop(replay), setup, FleetSpec(pods=1))
    else:
        workload = _Workload(due, replay.prompt_tokens, replay.output_tokens, float(due[-1]) if len(due) else 0.0)
        outcome = simulate(workload, setup, FleetSpec(pods=1, pod_max_outstanding=replay.max_concurrency))
    rec = outcome.records
    bad = [r for r in rec.rejected_reason.tolist() if r]
    if bad:
        raise PlannerError(
            f"{replay.source}: {len(bad)} of {len(rec.rejected_reason)} requests cannot be served in the "
            f"simulator ({bad[0]}): pass the engine arguments the server ran (--max-model-len, "
            "--gpu-memory-utilization, --kv-cache-dtype)"
        )
    first, done = np.asarray(rec.first_token_at), np.asarray(rec.finished_at)
    sent = np.asarray(rec.arrival_at) if closed else semaphore_send_times(due, done, replay.max_concurrency)
    return first - sent, done - first


def latency_means(ttft_s: np.ndarray, decode_s: np.ndarray, output_tokens: np.ndarray) -> dict[str, float]:
    """vLLM's mean TTFT, TPOT and ITL (seconds) from per-request TTFT and decode times.

    TPOT: per request decode / (tokens - 1), averaged over requests with more than one token.
    ITL: every gap between tokens of every request, averaged over gaps (vLLM pools them).
    """
    means = {"ttft": float(np.mean(ttft_s))}
    multi = output_tokens > 1
    if multi.any():
        gaps = output_tokens[multi] - 1
        means["tpot"] = float(np.mean(decode_s[multi] / gaps))
        means["itl"] = float(decode_s[multi].sum() / gaps.sum())
    return means


def predict_requests(replay: Replay, setup: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each request's simulated TTFT and decode time (s), averaged over the drawn realizations of
    the arrivals (the request is the same in every draw; its neighbours' timing is not)."""
    draws = [simulate_requests(replay, setup, k) for k in range(len(replay.arrivals))]
    return np.mean([d[0] for d in draws], axis=0), np.mean([d[1] for d in draws], axis=0)


def predict(replay: Replay, setup: Any) -> dict[str, float]:
    """Simulated mean TTFT, TPOT and ITL (seconds) of `replay` on one replica `setup` (a
    planner.sim ReplicaSetup), measured the way vLLM's client measures them (`latency_means`),
    averaged over the drawn realizations of the arrivals."""
    draws = [latency_means(*simulate_requests(replay, setup, k), replay.output_tokens)
             for k in range(len(replay.arrivals))]
    return {m: float(np.mean([d[m] for d in draws])) for m in draws[0]}
