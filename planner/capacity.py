"""Capacity of one replica under the SLO, found by simulation, cached on disk.

For each candidate (GPU, tensor_parallel_size) that holds the model with room for the concurrency
the SLO needs, and each request-size bucket, `capacities()` finds the highest arrival rate one
replica sustains while the SLO's attainment holds: a bisection on the rate, each step a short
simulation (1,200 requests, ~0.1-0.4 s, with the profile's size mix and short-scale burstiness). The
results are cached on disk, keyed by a hash of everything they depend on (model, engine settings,
GPU spec and calibration, SLO, sizes, burstiness, the simulator's source), and computed in parallel
over a process pool.

Users who measured their GPUs skip all this: the profile's `capacity:` section gives per-bucket
capacities directly (`measured_capacities`).

This module does no SimPy or PuLP itself: the simulation goes through one function,
`simulate_replica`, which calls `planner.sim.simulate` (tests replace it with a stub).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError

CAPACITY_ALGORITHM_VERSION = 4
"""Bump when the bisection or its settings change: old cache entries stop matching."""

DEFAULT_NUM_REQUESTS = 1200
"""Requests per bisection step. A few hundred leave the replica near its empty start for most of
the probe (optimistic); 1,200 at the simulator's speed still cost well under a second."""

WARMUP_FRACTION = 0.1
"""The first requests of a probe meet an empty replica; they are simulated but not scored."""

DEMAND_WINDOW_S = 60.0
"""Rates are measured over one-minute windows (the issue's definition of burst demand)."""


# ------------------------------------------------------------------------------ size buckets ---


class Bucket(BaseModel):
    """A request-size class: prompt and output token ranges [lo, hi], both inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    prompt_tokens: tuple[int, int]
    output_tokens: tuple[int, int]


ALL_SIZES = Bucket(name="all", prompt_tokens=(0, 2**62), output_tokens=(0, 2**62))


def buckets_from_ranges(ranges: Sequence[Any] | None) -> list[Bucket]:
    """Buckets from `optimizer.size_buckets` (or `capacity` entries); None → one bucket, all sizes."""
    if not ranges:
        return [ALL_SIZES]
    out = []
    for r in ranges:
        p, o = tuple(r.prompt_tokens), tuple(r.output_tokens)
        out.append(Bucket(name=f"p{p[0]}-{p[1]}_o{o[0]}-{o[1]}", prompt_tokens=p, output_tokens=o))
    if len({b.name for b in out}) != len(out):
        raise PlannerError("optimizer.size_buckets has duplicate ranges: give each bucket once")
    return out


def assign_buckets(prompt: np.ndarray, output: np.ndarray, buckets: Sequence[Bucket]) -> np.ndarray:
    """Index of each request's bucket: the first whose ranges contain it.

    A request outside every range goes to the bucket whose upper bounds it exceeds least (so the
    tail of a lognormal is served as the biggest class, not dropped).
    """
    prompt = np.asarray(prompt)
    output = np.asarray(output)
    idx = np.full(len(prompt), -1, dtype=np.int64)
    for i, b in enumerate(buckets):
        inside = (
            (idx < 0)
            & (prompt >= b.prompt_tokens[0])
            & (prompt <= b.prompt_tokens[1])
            & (output >= b.output_tokens[0])
            & (output <= b.output_tokens[1])
        )
        idx[inside] = i
    left = idx < 0
    if left.any():
        excess = np.stack(
            [
                np.maximum(prompt[left] - b.prompt_tokens[1], 0)
                + np.maximum(output[left] - b.output_tokens[1], 0)
                + np.maximum(b.prompt_tokens[0] - prompt[left], 0)
                + np.maximum(b.output_tokens[0] - output[left], 0)
                for b in buckets
            ]
        )
        idx[left] = np.argmin(excess, axis=0)
    return idx


# ------------------------------------------------------------------------------- burstiness ---


def local_burstiness_cv(arrival_s: np.ndarray, window_s: float = DEMAND_WINDOW_S) -> float:
    """Coefficient of variation of the inter-arrival gaps shorter than `window_s`.

    Gaps longer than a demand window separate bursts; the time-slot demand (a high percentile of
    one-minute rates) already provisions for those. What a single replica feels inside a burst is
    the short-scale irregularity, which this measures (1 = Poisson). Clipped to [0.5, 4].
    """
    gaps = np.diff(np.asarray(arrival_s, dtype=np.float64))
    gaps = gaps[(gaps > 0) & (gaps < window_s)]
    if len(gaps) < 10:
        return 1.0
    cv = float(np.std(gaps) / np.mean(gaps))
    return float(min(max(cv, 0.5), 4.0))


def unit_gaps(num: int, cv: float, seed: int) -> np.ndarray:
    """Inter-arrival gaps of mean 1 s with the given CV (gamma renewal; cv 1 = Poisson)."""
    rng = np.random.default_rng(seed)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, 1.0 / shape, size=num)


# ------------------------------------------------------------------------------- bisection ---


@dataclass
class Bisection:
    """What the search found: the highest passing rate and the evaluations it took."""

    rate_per_s: float
    attainment: float
    evaluations: list[tuple[float, float]] = field(default_factory=list)  # (rate, attainment)


def max_rate_under_slo(
    attainment_at: Callable[[float], float],
    target: float,
    rate_hint: float,
    *,
    max_evaluations: int = 12,
    rel_tol: float = 0.05,
    min_rate: float = 1e-4,
) -> Bisection:
    """Highest rate whose attainment meets `target`, assuming attainment falls as rate grows.

    Doubling (or halving) from `rate_hint` brackets the answer, then a geometric bisection
    narrows the bracket to `rel_tol`. Returns rate 0 when even `min_rate` misses the SLO (a
    request alone is too slow on this replica).
    """
    evals: list[tuple[float, float]] = []

    def check(rate: float) -> bool:
        att = float(attainment_at(rate))
        evals.append((rate, att))
        return att >= target

    lo, hi = 0.0, math.inf
    lo_att = 0.0
    rate = max(rate_hint, min_rate)
    while len(evals) < max_evaluations:
        if check(rate):
            lo, lo_att = rate, evals[-1][1]
            if math.isinf(hi):
                rate *= 2.0
                continue
        else:
            hi = rate
            if lo == 0.0:
                if rate <= min_rate:
                    break
                rate = max(rate / 4.0, min_rate)
                continue
        if hi / lo <= 1.0 + rel_tol:
            break
        rate = math.sqrt(lo * hi)
    return Bisection(rate_per_s=lo, attainment=lo_att, evaluations=evals)


# -------------------------------------------------------------------------------- results ---


class CapacityResult(BaseModel):
    """Max requests/s one replica of (gpu, TP) sustains for one bucket under the SLO."""

    model_config = ConfigDict(extra="forbid")

    gpu_id: str
    tensor_parallel_size: int
    bucket: str
    max_rate_per_s: float = Field(ge=0)
    attainment_at_max: float | None = None
    source: str = Field(description="simulated | cached | measured")
    evaluations: int = 0
    num_requests: int = 0
    burstiness_cv: float | None = None
    seconds: float = 0.0
    cache_key: str | None = None
    in_flight_at_max: float | None = Field(
        None, description="mean requests inside the replica at max_rate_per_s (Little's law)"
    )


class CandidateCheck(BaseModel):
    """Whether a (GPU, TP) can serve the profile at all, and why not."""

    model_config = ConfigDict(extra="forbid")

    gpu_id: str
    tensor_parallel_size: int
    fits: bool
    reason: str | None = None
    max_concurrency: float | None = Field(None, description="max_model_len-long requests the KV cache holds")
    kv_cache_tokens: int | None = None
    num_gpu_blocks: int | None = None
    weights_bytes: int | None = None
    unloaded_ttft_s: float | None = Field(None, description="prefill of the p50 prompt, alone")
    unloaded_tpot_s: float | None = Field(None, description="one decode step, batch 1")


def measured_capacities(section: Any) -> tuple[list[Bucket], list[CapacityResult], dict[str, float]]:
    """Buckets, capacities and hourly prices from the profile's `capacity:` section.

    Returns:
        (buckets in order of first appearance, one CapacityResult per entry and bucket,
        "gpu-tpN" -> USD per hour of one replica).
    """
    buckets: dict[tuple, Bucket] = {}
    results: list[CapacityResult] = []
    prices: dict[str, float] = {}
    for entry in section.entries:
        key = f"{entry.gpu}-tp{entry.tensor_parallel_size}"
        if key in prices:
            raise PlannerError(f"capacity.entries lists {entry.gpu} tp{entry.tensor_parallel_size} twice")
        prices[key] = float(entry.usd_per_hour)
        for b in entry.buckets:
            rng = (tuple(b.prompt_tokens), tuple(b.output_tokens))
            if rng not in buckets:
                bucket = buckets_from_ranges([b])[0]
                buckets[rng] = bucket
            results.append(
                CapacityResult(
                    gpu_id=entry.gpu,
                    tensor_parallel_size=entry.tensor_parallel_size,
                    bucket=buckets[rng].name,
                    max_rate_per_s=float(b.max_requests_per_second),
                    source="measured",
                )
            )
    return list(buckets.values()), results, prices


def measured_shares(section: Any) -> dict[str, float]:
    """bucket name -> share of traffic, from the capacity section (first entry that gives it)."""
    shares: dict[str, float] = {}
    for entry in section.entries:
        for b in entry.buckets:
            name = buckets_from_ranges([b])[0].name
            shares.setdefault(name, float(b.share))
    total = sum(shares.values())
    if not total > 0:
        raise PlannerError("capacity buckets' shares sum to 0: give each bucket its share of traffic")
    return {k: v / total for k, v in shares.items()}


# ------------------------------------------------------------------------------ the cache ---


def default_cache_dir() -> Path:
    """The user cache folder: $PLANNER_CACHE_DIR, else $XDG_CACHE_HOME/planner, else ~/.cache/planner."""
    env = os.environ.get("PLANNER_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "planner"


def check_cache_dir(directory: str | Path) -> None:
    """Refuse a cache folder that cannot be a folder: it, or a folder above it, is a file.

    A missing or read-only folder is fine (the cache is created on first write; a read-only one
    costs speed, not correctness), but a file in the path is a mistake the user should see.
    """
    path = Path(directory).expanduser()
    for part in (path / "capacity", *(path / "capacity").parents):
        if part.exists():
            if not part.is_dir():
                raise PlannerError(
                    f"capacity cache folder {directory}: {part} is a file, not a folder; "
                    "give another --cache-dir or use --no-cache"
                )
            return


class CapacityCache:
    """JSON files under <dir>/capacity/<key>.json; `directory=None` disables caching.

    NOTE: writing the cache is the one file write outside planner/report/ the design allows
    ("the capacity cache"); it is atomic (write to a temp file, then rename) so parallel runs
    never read half a file.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = None if directory is None else Path(directory) / "capacity"

    def get(self, key: str) -> CapacityResult | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.json"
        try:
            return CapacityResult.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, result: CapacityResult) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(result.model_dump_json())
            tmp.replace(self.directory / f"{key}.json")
        except OSError:
            pass  # a read-only cache folder costs speed, not correctness


_SOURCE_HASH: str | None = None


def _source_fingerprint() -> str:
    """Hash of the code a capacity depends on (simulator, step-time model, memory, this file)."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        root = Path(__file__).resolve().parent
        files = sorted(
            [*root.glob("sim/*.py"), root / "perf.py", root / "memory.py", root / "calibration.py", Path(__file__)]
        )
        h = hashlib.sha256()
        for f in files:
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _SOURCE_HASH = h.hexdigest()[:16]
    return _SOURCE_HASH


def cache_key(parts: dict[str, Any]) -> str:
    """Stable hash of a JSON-able description of a capacity question."""
    blob = json.dumps(
        {**parts, "algorithm": CAPACITY_ALGORITHM_VERSION, "source": _source_fingerprint()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


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


def simulate_replica(profile: Any, gpu_id: str, tensor_parallel_size: int, workload: Any) -> Any:
    """Run one pod replica on `workload`; returns the simulator's SimOutcome (the seam tests stub)."""
    from planner import sim  # noqa: PLC0415  (SimPy only loads when a simulation runs)

    setup = replica_setup(profile, gpu_id, tensor_parallel_size)
    return sim.simulate(workload, setup, sim.FleetSpec(pods=1), profile.slo)


def replica_setup(profile: Any, gpu_id: str, tensor_parallel_size: int) -> Any:
    """The simulator's ReplicaSetup for a (GPU, TP): the same one `planner simulate` builds."""
    from planner.sim.setup import replica_setup as build  # noqa: PLC0415

    return build(profile, gpu_id, tensor_parallel_size)


def _engine_parts(profile: Any, gpu_id: str, tensor_parallel_size: int) -> dict[str, Any]:
    """Model spec, GPU spec, engine args, memory view and step-time model of one candidate."""
    from planner import catalog, memory, models, perf  # noqa: PLC0415

    spec = models.get_model(profile.model.name)
    gpu = catalog.get_gpu(gpu_id)
    m = profile.model
    engine_args = memory.resolve_engine_args(gpu, profile.serving, spec)
    view = memory.engine_view(
        spec, gpu, engine_args, tensor_parallel_size, m.precision, m.quantization, m.kv_cache_dtype
    )
    step_model = None
    if view.fits:
        step_model = perf.StepTimeModel.create(
            spec, gpu, tensor_parallel_size, m.precision, m.quantization, m.kv_cache_dtype
        )
    weights = memory.weights_bytes(spec, m.precision, m.quantization)
    return {
        "spec": spec,
        "gpu": gpu,
        "engine_args": engine_args,
        "view": view,
        "step_model": step_model,
        "weights_bytes": int(weights),
    }


def check_candidate(
    profile: Any, gpu_id: str, tensor_parallel_size: int, prompt_p50: int, tokens_p99: int
) -> CandidateCheck:
    """Memory and latency feasibility of one (GPU, TP) before any simulation.

    It must hold the model, keep the KV cache of at least one p99-sized request, and prefill a
    median prompt and run one decode step within the SLO (else no rate can meet it).
    """
    try:
        parts = _engine_parts(profile, gpu_id, tensor_parallel_size)
    except PlannerError as err:
        return CandidateCheck(gpu_id=gpu_id, tensor_parallel_size=tensor_parallel_size, fits=False, reason=str(err))
    view = parts["view"]
    base = {
        "gpu_id": gpu_id,
        "tensor_parallel_size": tensor_parallel_size,
        "max_concurrency": getattr(view, "max_concurrency", None),
        "kv_cache_tokens": getattr(view, "kv_cache_tokens", None),
        "num_gpu_blocks": getattr(view, "num_gpu_blocks", None),
        "weights_bytes": parts["weights_bytes"],
    }
    if not view.fits:
        return CandidateCheck(**base, fits=False, reason=view.reason or "the model does not fit")
    if (view.kv_cache_tokens or 0) < tokens_p99:
        return CandidateCheck(
            **base,
            fits=False,
            reason=f"KV cache holds {view.kv_cache_tokens} tokens, less than one p99 request ({tokens_p99})",
        )
    sm = parts["step_model"]
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
    profile: Any,
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
    from planner.profile import Profile  # noqa: PLC0415

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


def make_tasks(
    profile: Any,
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
            key = cache_key(
                {
                    "model": profile.model.model_dump(),
                    "serving": profile.serving.model_dump(),
                    "slo": profile.slo.model_dump(),
                    "gpu": gpu_id,
                    "gpu_spec": (gpu_fingerprints or {}).get(gpu_id, ""),
                    "tp": tp,
                    "sizes": hashlib.sha256(np.asarray([prompt, output]).tobytes()).hexdigest(),
                    "cv": round(cv, 4),
                    "seed": seed,
                    "n": num_requests,
                }
            )
            tasks.append(
                CapacityTask(profile_json, gpu_id, tp, bucket.name, prompt, output, cv, seed, num_requests, key)
            )
    return tasks


def capacities(
    tasks: Sequence[CapacityTask],
    *,
    cache: CapacityCache,
    workers: int = 1,
    simulate: Callable[..., Any] | None = None,
) -> list[CapacityResult]:
    """Answer every task: from the cache when possible, the rest in a process pool.

    Args:
        tasks: from `make_tasks`.
        cache: where answers are kept between runs (directory None = no cache).
        workers: processes for the simulations (1 = in this process).
        simulate: replaces `simulate_replica` (tests; forces workers=1).
    """
    results: dict[str, CapacityResult] = {}
    todo: list[CapacityTask] = []
    for t in tasks:
        hit = cache.get(t.key)
        if hit is not None:
            results[t.key] = hit.model_copy(update={"source": "cached"})
        else:
            todo.append(t)
    if simulate is not None or workers <= 1 or len(todo) <= 1:
        fresh = [run_task(t, simulate) for t in todo]
    else:
        # Longest first would be ideal; larger TP candidates simulate no slower, so keep order.
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            fresh = list(pool.map(run_task, todo))
    for t, r in zip(todo, fresh):
        cache.put(t.key, r)
        results[t.key] = r
    return [results[t.key] for t in tasks]


# ------------------------------------------------------- the rest of the optimizer's world ---
# What `planner.plan.plan` needs besides capacities, each one function over the real modules
# (tests hand `plan` stand-ins through its Backend).


def simulate_fleet(
    profile: Any,
    gpu_id: str,
    tensor_parallel_size: int,
    workload: Any,
    *,
    pods: int,
    active_workers: int = 0,
    max_workers: int = 0,
    seed: int = 0,
) -> Any:
    """Simulate one endpoint of a plan (pods and/or a serverless endpoint of one GPU type).

    Returns the simulator's SimOutcome (records, workers spans).
    """
    from planner import sim  # noqa: PLC0415

    setup = replica_setup(profile, gpu_id, tensor_parallel_size)
    serverless = None
    if max_workers > 0:
        serverless = _serverless_spec(profile, gpu_id, tensor_parallel_size, active_workers, max_workers, pods)
    fleet = sim.FleetSpec(pods=pods, serverless=serverless)
    return sim.simulate(workload, setup, fleet, profile.slo, seed=seed)


def _serverless_spec(profile: Any, gpu_id: str, tp: int, active_workers: int, max_workers: int, pods: int) -> Any:
    """The simulator's ServerlessSpec for an endpoint with the plan's worker counts.

    With pods in the same endpoint the serverless workers take overflow only (pods first), so
    flex workers serve the bursts and idle out instead of sharing the base load.
    """
    from planner.sim.serverless import ServerlessSpec  # noqa: PLC0415

    parts = _engine_parts(profile, gpu_id, tp)
    return ServerlessSpec.from_settings(
        profile.billing, parts["weights_bytes"], overflow_only=pods > 0,
        active_workers=active_workers, max_workers=max(max_workers, active_workers, 1), gpus=tp,
    )


def resolve_prices(profile: Any, gpu_id: str) -> Any:
    """The billing module's ResolvedPrices for a GPU under the profile's cloud and overrides."""
    from planner import billing, catalog  # noqa: PLC0415

    return billing.resolve_prices(catalog.get_gpu(gpu_id), profile.billing, profile.prices)


def scale_up_seconds(profile: Any, gpu_id: str, tensor_parallel_size: int) -> float:
    """Seconds a flex worker is billed per scale-up beyond its busy time: cold start + idle timeout."""
    from planner import billing  # noqa: PLC0415

    parts = _engine_parts(profile, gpu_id, tensor_parallel_size)
    cold = billing.cold_start_seconds(parts["weights_bytes"], profile.billing)
    return float(cold) + float(profile.billing.serverless.idle_timeout_seconds)


def engine_settings(profile: Any, gpu_id: str, tensor_parallel_size: int) -> dict[str, Any]:
    """The resolved vLLM engine arguments of a candidate (for the deploy settings)."""
    parts = _engine_parts(profile, gpu_id, tensor_parallel_size)
    args = parts["engine_args"]
    data = args.model_dump() if hasattr(args, "model_dump") else dict(vars(args))
    data["tensor_parallel_size"] = tensor_parallel_size
    data["model"] = profile.model.name
    data["quantization"] = profile.model.quantization
    data["kv_cache_dtype"] = profile.model.kv_cache_dtype
    data["precision"] = profile.model.precision
    data["max_concurrency"] = getattr(parts["view"], "max_concurrency", None)
    return data


# What an assumption line concerns: (GPU id, billing mode) pairs; mode "*" = the GPU in any mode.
# No pair = the whole run (the month). plan.py sorts lines into the chosen plan's and the alternatives'.
Concerns = frozenset[tuple[str, str]]


def assumptions(profile: Any, uses: Mapping[str, Collection[str]]) -> list[tuple[str, Concerns]]:
    """Every estimated input plans using these GPUs relied on, one line each, with what it concerns.

    Args:
        profile: the run's profile.
        uses: GPU id -> the billing modes ("pod", "serverless") the plans shown use it in: a price
            is listed only for a mode some plan uses; the serverless settings once, naming every
            GPU they apply to.
    """
    from planner import billing, catalog, models  # noqa: PLC0415

    model = models.get_model(profile.model.name).name
    pod_gpus = [g for g in uses if "pod" in uses[g]]
    sls_gpus = [g for g in uses if "serverless" in uses[g]]
    lines: list[tuple[str, Concerns]] = []
    seen: set[str] = set()

    def add(line: str, concerns: Concerns) -> None:
        if line not in seen:
            seen.add(line)
            lines.append((line, concerns))

    # Settings: once for all GPUs. The pod line concerns the pod GPUs, the rest the serverless ones.
    for line in billing.assumptions(profile.billing, None, pods=bool(pod_gpus), serverless=bool(sls_gpus),
                                    model=model, gpu_ids=sls_gpus):
        if line.startswith(billing.setting_path("pod_provisioning_delay_seconds")):
            add(line, frozenset((g, "pod") for g in pod_gpus))
        elif line.startswith("billing."):
            add(line, frozenset((g, "serverless") for g in sls_gpus))
        else:
            add(line, frozenset())
    for gpu_id in uses:
        gpu = catalog.get_gpu(gpu_id)
        prices = billing.resolve_prices(gpu, profile.billing, profile.prices)
        for mode in ("pod", "serverless"):
            if mode in uses[gpu_id]:
                for line in billing.price_assumptions(prices, pods=mode == "pod", serverless=mode == "serverless",
                                                      name_gpu=True):
                    add(line, frozenset({(gpu_id, mode)}))
        for name in gpu.estimated:
            note = gpu.notes.get(name, "estimated")
            add(f"{gpu_id}: {name} is estimated ({note})", frozenset({(gpu_id, "*")}))
        cal = gpu.calibration
        if cal is not None:
            for key, value in (cal.model_dump() if hasattr(cal, "model_dump") else {}).items():
                if isinstance(value, dict) and value.get("estimated"):
                    add(f"{gpu_id}: efficiency {key} = {value.get('value')} is estimated "
                        f"({value.get('source', 'no source')})", frozenset({(gpu_id, "*")}))
    return lines


def gpu_fingerprint(gpu_id: str) -> str:
    """Hash of a GPU's catalog entry (specs, calibration, prices) for capacity cache keys."""
    from planner import catalog  # noqa: PLC0415

    try:
        gpu = catalog.get_gpu(gpu_id)
    except PlannerError:
        return ""
    return hashlib.sha256(gpu.model_dump_json().encode()).hexdigest()[:16]


