"""Capacity tasks: one (candidate, bucket) bisection each, run over a process pool, cached."""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.capacity.buckets import (
    DEFAULT_NUM_REQUESTS,
    WARMUP_FRACTION,
    Bucket,
    assign_buckets,
    local_burstiness_cv,
    unit_gaps,
)
from planner.capacity.cache import CapacityCache, cache_key
from planner.capacity.search import CandidateCheck, CapacityResult, max_rate_under_slo
from planner.errors import PlannerError
from planner.inputs.profile import Profile
from planner.traffic.closed_loop import closed_arrivals

# --------------------------------------------------------------------- simulation plumbing ---


@dataclass(frozen=True)
class CapacityTask:
    """One (candidate, bucket) capacity question, picklable for the process pool."""

    profile_json: str
    gpu_id: str
    tensor_parallel_size: int
    bucket: str
    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    burstiness_cv: float
    seed: int
    num_requests: int
    key: str
    closed: bool = False  # closed-loop traffic: the capacity is in users (planner.capacity.closed)


def simulate_replica(profile: Profile, gpu_id: str, tensor_parallel_size: int, workload: Any) -> Any:
    """Run one pod replica on `workload`; returns the simulator's SimOutcome (the seam tests stub)."""
    from planner import sim  # noqa: PLC0415  (SimPy only loads when a simulation runs)

    setup = replica_setup(profile, gpu_id, tensor_parallel_size)
    return sim.simulate(workload, setup, sim.FleetSpec(pods=1), profile.slo)


def replica_setup(profile: Profile, gpu_id: str, tensor_parallel_size: int) -> Any:
    """The simulator's ReplicaSetup for a (GPU, TP): the same one `planner simulate` builds."""
    from planner.scenario import Candidate  # noqa: PLC0415  (SimPy only loads when a simulation runs)

    return Candidate.build(profile, gpu_id, tensor_parallel_size).replica_setup()


def check_candidate(
    profile: Profile, gpu_id: str, tensor_parallel_size: int, prompt_p50: int, tokens_p99: int
) -> CandidateCheck:
    """Memory and latency feasibility of one (GPU, TP) before any simulation.

    It must hold the model, keep the KV cache of at least one p99-sized request, and prefill a
    median prompt and run one decode step within the SLO (else no rate can meet it).
    """
    from planner.scenario import Candidate  # noqa: PLC0415

    try:
        cand = Candidate.build(profile, gpu_id, tensor_parallel_size)
    except PlannerError as err:
        return CandidateCheck(gpu_id=gpu_id, tensor_parallel_size=tensor_parallel_size, fits=False, reason=str(err))
    view = cand.view
    base = {
        "gpu_id": gpu_id,
        "tensor_parallel_size": tensor_parallel_size,
        "max_concurrency": getattr(view, "max_concurrency", None),
        "kv_cache_tokens": getattr(view, "kv_cache_tokens", None),
        "num_gpu_blocks": getattr(view, "num_gpu_blocks", None),
        "weights_bytes": cand.weights_bytes,
    }
    if not view.fits:
        return CandidateCheck(**base, fits=False, reason=view.reason or "the model does not fit")
    if (view.kv_cache_tokens or 0) < tokens_p99:
        return CandidateCheck(
            **base,
            fits=False,
            reason=f"KV cache holds {view.kv_cache_tokens} tokens, less than one p99 request ({tokens_p99})",
        )
    try:
        sm = cand.step_model
    except PlannerError as err:  # e.g. TP over GPUs whose catalog entry has no interconnect figure
        return CandidateCheck(**base, fits=False, reason=str(err))
    ttft = float(sm.prefill_seconds(int(prompt_p50)))
    tpot = float(sm.step_seconds(np.array([max(prompt_p50, 1)], dtype=np.int64)))
    base.update(unloaded_ttft_s=ttft, unloaded_tpot_s=tpot)
    if ttft > profile.slo.ttft_seconds:
        return CandidateCheck(
            **base, fits=False,
            reason=f"prefill of a median prompt alone takes {ttft:.3f} s > TTFT SLO {profile.slo.ttft_seconds} s",
        )
    if tpot > profile.slo.tpot_seconds:
        return CandidateCheck(
            **base, fits=False,
            reason=f"one decode step alone takes {tpot * 1000:.1f} ms > TPOT SLO {profile.slo.tpot_seconds * 1000:.0f} ms",
        )
    return CandidateCheck(**base, fits=True)


def _attainment_fn(
    profile: Profile,
    gpu_id: str,
    tp: int,
    prompt: np.ndarray,
    output: np.ndarray,
    cv: float,
    seed: int,
    simulate: Callable[..., Any],
) -> Callable[[float], float]:
    """rate -> SLO attainment of one replica on the same requests, time-scaled to that rate.

    Common random numbers: every rate sees the same sizes and the same gap pattern, so the
    attainment curve is as monotone as the simulator allows.
    """
    from planner.sim.metrics import request_slo  # noqa: PLC0415  (the one SLO rule)
    from planner.traffic import Workload  # noqa: PLC0415

    gaps = unit_gaps(len(prompt), cv, seed)
    unit_arrivals = np.cumsum(gaps) - gaps[0]
    skip = int(len(output) * WARMUP_FRACTION)

    def attainment_at(rate: float) -> float:
        arrivals = unit_arrivals / rate
        horizon = float(arrivals[-1] + 1.0 / rate)
        wl = Workload(arrivals, prompt, output, horizon, f"capacity probe {rate:.4g} req/s")
        out = simulate(profile, gpu_id, tp, wl)
        rec = out.records
        ok = request_slo(
            rec.arrival_at, rec.first_token_at, rec.finished_at, output,
            profile.slo.ttft_seconds, profile.slo.tpot_seconds,
        )[2][skip:]
        # Little's law: mean requests in the replica = rate x mean time in system.
        e2e = np.asarray(rec.finished_at, dtype=float)[skip:] - np.asarray(rec.arrival_at, dtype=float)[skip:]
        e2e = e2e[np.isfinite(e2e)]
        in_flight[rate] = float(rate * e2e.mean()) if len(e2e) else math.nan
        return float(ok.mean()) if len(ok) else 0.0

    in_flight: dict[float, float] = {}
    attainment_at.in_flight = in_flight  # type: ignore[attr-defined]
    return attainment_at


def _rate_hint(check: CandidateCheck | None, mean_output: float) -> float:
    """A starting rate for the bracket: a fully busy replica's throughput, halved."""
    if check is None or not check.unloaded_tpot_s or not check.max_concurrency:
        return 1.0
    conc = min(check.max_concurrency, 64)
    per_request_s = (check.unloaded_ttft_s or 0.0) + mean_output * check.unloaded_tpot_s * 1.5
    return max(conc / max(per_request_s, 1e-3) / 2.0, 1e-3)


def run_task(task: CapacityTask, simulate: Callable[..., Any] | None = None) -> CapacityResult:
    """Answer one capacity question by bisection (runs in a pool worker)."""
    from planner.inputs.profile import Profile  # noqa: PLC0415

    started = time.perf_counter()
    profile = Profile.model_validate_json(task.profile_json)
    prompt = np.asarray(task.prompt_tokens, dtype=np.int64)
    output = np.asarray(task.output_tokens, dtype=np.int64)
    check = None
    if simulate is None:
        simulate = simulate_replica
        check = check_candidate(
            profile, task.gpu_id, task.tensor_parallel_size, int(np.median(prompt)), int(np.max(prompt + output))
        )
    if task.closed:
        from planner.capacity.closed import run_closed_task  # noqa: PLC0415

        return run_closed_task(task, simulate, check, profile, _rate_hint(check, float(output.mean())))
    fn = _attainment_fn(
        profile, task.gpu_id, task.tensor_parallel_size, prompt, output, task.burstiness_cv, task.seed, simulate
    )
    found = max_rate_under_slo(fn, profile.slo.attainment, _rate_hint(check, float(output.mean())))
    return CapacityResult(
        gpu_id=task.gpu_id,
        tensor_parallel_size=task.tensor_parallel_size,
        bucket=task.bucket,
        max_rate_per_s=found.rate_per_s,
        attainment_at_max=found.attainment if found.rate_per_s > 0 else None,
        source="simulated",
        evaluations=len(found.evaluations),
        num_requests=len(prompt),
        burstiness_cv=task.burstiness_cv,
        seconds=time.perf_counter() - started,
        cache_key=task.key,
        in_flight_at_max=getattr(fn, "in_flight", {}).get(found.rate_per_s),
    )


def _task_key(profile: Profile, gpu_id: str, tp: int, gpu_fingerprints: dict[str, str] | None,
              prompt: tuple[int, ...], output: tuple[int, ...], seed: int, num_requests: int, **extra: Any) -> str:
    """The cache key of one capacity question: everything its answer depends on."""
    return cache_key(
        {
            "model": profile.model.model_dump(),
            "serving": profile.serving.model_dump(),
            "slo": profile.slo.model_dump(),
            "gpu": gpu_id,
            "gpu_spec": (gpu_fingerprints or {}).get(gpu_id, ""),
            "tp": tp,
            "sizes": hashlib.sha256(np.asarray([prompt, output]).tobytes()).hexdigest(),
            "seed": seed,
            "n": num_requests,
            **extra,
        }
    )


def make_tasks(
    profile: Profile,
    candidates: Sequence[tuple[str, int]],
    buckets: Sequence[Bucket],
    workload: Any,
    *,
    seed: int,
    num_requests: int = DEFAULT_NUM_REQUESTS,
    gpu_fingerprints: dict[str, str] | None = None,
) -> list[CapacityTask]:
    """One task per (candidate, bucket) with traffic: sizes sampled from the bucket's requests."""
    idx = assign_buckets(workload.prompt_tokens, workload.output_tokens, buckets)
    cv = local_burstiness_cv(workload.arrival_s)
    rng = np.random.default_rng(seed)
    profile_json = profile.model_dump_json()
    tasks: list[CapacityTask] = []
    for bi, bucket in enumerate(buckets):
        members = np.flatnonzero(idx == bi)
        if len(members) == 0:
            continue
        pick = rng.choice(members, size=num_requests, replace=len(members) < num_requests)
        pick.sort()
        prompt = tuple(int(x) for x in workload.prompt_tokens[pick])
        output = tuple(int(x) for x in workload.output_tokens[pick])
        for gpu_id, tp in candidates:
            key = _task_key(profile, gpu_id, tp, gpu_fingerprints, prompt, output, seed, num_requests,
                            cv=round(cv, 4))
            tasks.append(
                CapacityTask(profile_json, gpu_id, tp, bucket.name, prompt, output, cv, seed, num_requests, key)
            )
    return tasks


def make_closed_tasks(
    profile: Profile,
    candidates: Sequence[tuple[str, int]],
    loop: Any,
    *,
    seed: int,
    num_requests: int = DEFAULT_NUM_REQUESTS,
    gpu_fingerprints: dict[str, str] | None = None,
) -> list[CapacityTask]:
    """One users-capacity task per candidate for a closed loop (one size bucket, "all"): the
    probe replays the first `num_requests` sizes the loop's users send, with its think time."""
    prompt_arr, output_arr = loop.sizes_sample(num_requests)
    prompt = tuple(int(x) for x in prompt_arr)
    output = tuple(int(x) for x in output_arr)
    profile_json = profile.model_dump_json()
    think = closed_arrivals(profile).think_time_seconds
    tasks = []
    for gpu_id, tp in candidates:
        key = _task_key(profile, gpu_id, tp, gpu_fingerprints, prompt, output, seed, num_requests,
                        closed_loop_think=think.model_dump() if hasattr(think, "model_dump") else float(think))
        tasks.append(CapacityTask(profile_json, gpu_id, tp, "all", prompt, output, 0.0, seed, num_requests, key,
                                  closed=True))
    return tasks


def capacities(
    tasks: Sequence[CapacityTask],
    *,
    cache: CapacityCache,
    workers: int = 1,
    simulate: Callable[..., Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CapacityResult]:
    """Answer every task: from the cache when possible, the rest in a process pool.

    Args:
        tasks: from `make_tasks`.
        cache: where answers are kept between runs (directory None = no cache).
        workers: processes for the simulations (1 = in this process).
        simulate: replaces `simulate_replica` (tests; forces workers=1).
        progress: called with (answered, total) as the simulated answers come in.
    """
    results: dict[str, CapacityResult] = {}
    todo: list[CapacityTask] = []
    for t in tasks:
        hit = cache.get(t.key, t)
        if hit is not None:
            results[t.key] = hit.model_copy(update={"source": "cached"})
        else:
            todo.append(t)
    # Each answer goes to the cache as soon as it is known: an interrupted run keeps its work.
    done = len(tasks) - len(todo)
    if progress is not None:
        progress(done, len(tasks))
    if simulate is not None or workers <= 1 or len(todo) <= 1:
        for t in todo:
            results[t.key] = run_task(t, simulate)
            cache.put(t.key, results[t.key])
            done += 1
            if progress is not None:
                progress(done, len(tasks))
    else:
        # Longest first would be ideal; larger TP candidates simulate no slower, so keep order.
        pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=die_with_parent,
                                   initargs=(os.getpid(),))
        try:
            futures = {pool.submit(run_task, t): t for t in todo}
            for future in as_completed(futures):
                t = futures[future]
                results[t.key] = future.result()
                cache.put(t.key, results[t.key])
                done += 1
                if progress is not None:
                    progress(done, len(tasks))
        except BrokenProcessPool:
            raise PlannerError(
                "a capacity worker process died (killed, interrupted or out of memory); the capacities "
                "finished so far are cached: run again, or with --workers 1"
            ) from None
        finally:
            # An interrupt or an error: drop the queued tasks, do not wait for the running ones.
            pool.shutdown(wait=False, cancel_futures=True)
    return [results[t.key] for t in tasks]


def die_with_parent(parent_pid: int) -> None:
    """Make a pool worker die with the process that started it.

    Ctrl-C reaches the whole process group: the parent handles it (exit 130), and a worker exits at
    once, quietly (no KeyboardInterrupt traceback, no finishing its simulation first). A parent
    killed outright (SIGKILL)
    cannot stop them: on Linux the kernel sends them SIGKILL then (PR_SET_PDEATHSIG); elsewhere a
    thread notices the parent is gone (its parent pid changes) and exits.
    """
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job ignores Ctrl-C: so do its workers
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (linux/prctl.h)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


