"""Test doubles for the optimizer's world: a fluid 'simulator' with hand-computable behaviour.

A replica of GPU g carries CAPS[g] requests/s; a request meets the SLO when the arrivals in its
one-minute window, spread over the replicas ready at that time, stay within capacity. Serverless
flex workers start at the first arrival of a busy run and need COLD_S before they serve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from planner.assumption import Assumption
from planner.billing import ResolvedPrices
from planner.capacity import CandidateCheck, CapacityResult
from planner.inputs.profile import Profile

CAPS = {"small": 2.0, "big": 6.0}
POD_USD_PER_HOUR = {"small": 0.5, "big": 1.2}
FLEX_USD_PER_S = {"small": 0.00019, "big": 0.00053}
COLD_S = 30.0


@dataclass
class Span:
    kind: str
    started_at: float
    ready_at: float
    stopped_at: float | None
    busy_s: float
    gpus: int
    worker_id: int = 0


def fake_simulate_fleet(profile, gpu, tp, workload, *, pods, active_workers=0, max_workers=0, seed=0, calls=None,
                        pod_schedule=None, pod_schedule_slot_s=3600.0, pod_provision_s=0.0, progress=None):
    if calls is not None:
        calls.append((gpu, tp, len(workload), pods, active_workers, max_workers))
    cap = CAPS[gpu] * tp
    arr = workload.arrival_s
    n = len(arr)
    horizon = workload.horizon_s
    win = (arr // 60).astype(int)
    nwin = int(np.ceil(horizon / 60))
    counts = np.bincount(win, minlength=nwin) / 60.0
    always = pods + active_workers
    if pod_schedule:  # scheduled pods: each window has its slot's pods (ready in time, as prewarmed)
        slot = np.minimum((np.arange(nwin) * 60.0 // pod_schedule_slot_s).astype(int), len(pod_schedule) - 1)
        always = np.asarray(pod_schedule)[slot] + active_workers
        pods = max(pod_schedule)  # billed as that many pods all the horizon (a double: an upper bound)
    flex_max = max(0, max_workers - active_workers)
    need = np.ceil(counts / cap - 1e-9).astype(int)
    flex_needed = np.clip(need - always, 0, flex_max)
    spans = [Span("pod", 0.0, 0.0, None, horizon, tp) for _ in range(pods)]
    spans += [Span("active", 0.0, 0.0, None, horizon, tp) for _ in range(active_workers)]
    flex_spans = []
    for k in range(1, flex_max + 1):
        on = flex_needed >= k
        w = 0
        while w < nwin:
            if on[w]:
                start = w
                while w < nwin and on[w]:
                    w += 1
                t0 = start * 60.0
                flex_spans.append(Span("flex", t0, t0 + COLD_S, w * 60.0 + 5.0, (w - start) * 60.0, tp))
            else:
                w += 1
    spans += flex_spans
    # Workers serving at each arrival: the always-on ones plus flex workers past their cold start.
    base = np.asarray(always, dtype=float)[win] if np.ndim(always) else np.full(n, float(always))
    ready = base.copy()
    for sp in flex_spans:
        ready += (arr >= sp.ready_at) & (arr < sp.stopped_at)
    served_ok = counts[win] <= ready * cap + 1e-9
    first = arr + np.where(served_ok, 0.5, 10.0)
    finished = first + 1.0
    # Who served each request: an always-on worker when there is one; a request that missed while
    # a flex worker was starting waited for that worker (its cold start).
    for wid, sp in enumerate(spans):
        sp.worker_id = wid
    replica = np.where(base > 0, 0, -1)
    for sp in flex_spans:
        replica[(arr >= sp.ready_at) & (arr < sp.stopped_at) & (base == 0)] = sp.worker_id
        replica[(arr >= sp.started_at) & (arr < sp.ready_at) & ~served_ok] = sp.worker_id
    records = SimpleNamespace(arrival_at=arr, first_token_at=first, finished_at=finished,
                              output_tokens=np.asarray(workload.output_tokens), replica=replica)
    return SimpleNamespace(records=records, workers=spans)


def fake_capacities(tasks, *, cache=None, workers=1):
    """CAPS per replica, lower under a TTFT SLO tighter than 2 s (less queueing allowed)."""
    out = []
    for t in tasks:
        ttft = json.loads(t.profile_json)["slo"]["ttft_seconds"]
        rate = CAPS[t.gpu_id] * t.tensor_parallel_size * min(1.0, ttft / 2.0) ** 0.5
        out.append(CapacityResult(gpu_id=t.gpu_id, tensor_parallel_size=t.tensor_parallel_size, bucket=t.bucket,
                                  max_rate_per_s=rate, source="simulated", num_requests=t.num_requests,
                                  burstiness_cv=t.burstiness_cv))
    return out


def fake_prices(profile, gpu):
    return ResolvedPrices(
        gpu_id=gpu, pod_cloud="secure", pod_provider="test", pod_usd_per_gpu_hour=POD_USD_PER_HOUR[gpu],
        pod_price_label="test price", flex_usd_per_gpu_s=FLEX_USD_PER_S[gpu], active_usd_per_gpu_s=None,
    )


class DoubleBackend:
    """The optimizer's world made of the doubles above (a `PlanningBackend`)."""

    def __init__(self, calls=None):
        self.calls = calls

    def check_names(self, profile):
        return None  # the doubles' GPUs ("small", "big") are not in the catalog

    def check_candidate(self, profile, gpu, tp, p50, p99):
        return CandidateCheck(gpu_id=gpu, tensor_parallel_size=tp, fits=gpu in CAPS,
                              reason=None if gpu in CAPS else "unknown")

    def gpu_fingerprint(self, gpu):
        return ""

    def capacities(self, tasks, *, cache=None, workers=1):
        return fake_capacities(tasks, cache=cache, workers=workers)

    def resolve_prices(self, profile, gpu):
        return fake_prices(profile, gpu)

    def scale_up_seconds(self, profile, gpu, tp):
        return COLD_S + 5.0

    def simulate_fleet(self, *args, **kwargs):
        return fake_simulate_fleet(*args, **kwargs, calls=self.calls)

    def engine_settings(self, profile, gpu, tp):
        return {"max_model_len": 8192, "gpu_memory_utilization": 0.9, "tensor_parallel_size": tp,
                "max_num_seqs": 256, "max_num_batched_tokens": 8192, "block_size": 16, "model": profile.model.name}

    def assumptions(self, profile, uses):
        return [Assumption(topic="note", name="test prices", source=f"for {', '.join(uses)}")]


def backend(calls=None) -> DoubleBackend:
    return DoubleBackend(calls)


def profile(arrivals: dict, **overrides) -> Profile:
    data = {
        "name": "test",
        "model": {"name": "llama-3.1-8b"},
        "serving": {"max_model_len": 4096},
        "traffic": {
            "arrivals": arrivals,
            "sizes": {"distribution": "fixed", "prompt_tokens": 500, "output_tokens": 100},
            "horizon_seconds": 3600,
        },
        "slo": {"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.95},
        "candidates": {"gpus": ["small", "big"], "tensor_parallel_sizes": [1], "billing": ["pod", "serverless"]},
        "billing": {"serverless": {"max_workers": 10}},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[section] = value
    return Profile.from_dict(data)
