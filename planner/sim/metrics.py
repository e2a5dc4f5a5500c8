"""Per-request records and the metrics computed from them (vectorized, after the run).

Definitions follow vLLM's benchmark_serving: TTFT = first token - arrival; TPOT = (finish - first
token) / (output tokens - 1) for requests with at least two output tokens; end-to-end latency =
finish - arrival; queue wait = admitted (start of the first step that scheduled it) - arrival.
A request meets the SLO when it completed with TTFT <= slo.ttft_seconds and TPOT <=
slo.tpot_seconds (a one-token request has no TPOT to miss); attainment counts rejected and
unserved requests as misses. Goodput is SLO-meeting requests per simulated second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

PERCENTILES = (50, 90, 95, 99)

# What TTFT and TPOT leave out (an assumption every plan lists).
ENGINE_LATENCY_NOTE = ("simulated from the request reaching the endpoint to the end of the engine step that produces "
                       "each token; the API server's HTTP handling, tokenization and streaming, and the network, are "
                       "not simulated (leave them room in the SLO)")


@dataclass(frozen=True)
class RequestRecords:
    """One entry per workload request, in workload order. Times in simulated seconds, NaN = never.

    rejected_reason is "" for served requests, else one of fleet.REJECT_REASONS.
    """

    arrival_at: np.ndarray  # float64
    admitted_at: np.ndarray  # float64
    first_token_at: np.ndarray  # float64
    finished_at: np.ndarray  # float64
    replica: np.ndarray  # int32 worker_id, -1 if never dispatched
    preemptions: np.ndarray  # int32
    prompt_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    rejected_reason: np.ndarray  # str

    def __len__(self) -> int:
        return len(self.arrival_at)

    @property
    def completed(self) -> np.ndarray:
        """Mask of requests that produced all their output tokens."""
        return ~np.isnan(self.finished_at)

    def columns(self) -> dict[str, np.ndarray]:
        """Column name → array, in a stable order (for CSV writers)."""
        return {
            "request_id": np.arange(len(self), dtype=np.int64),
            "arrival_at": self.arrival_at,
            "admitted_at": self.admitted_at,
            "first_token_at": self.first_token_at,
            "finished_at": self.finished_at,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "replica": self.replica,
            "preemptions": self.preemptions,
            "rejected_reason": self.rejected_reason,
        }


class WorkerSpan(BaseModel):
    """One worker's life, for billing: started (billed from), ready (took requests), stopped."""

    worker_id: int
    kind: Literal["pod", "active", "flex"]
    started_at: float
    ready_at: float | None = Field(description="None if it was stopped before becoming ready.")
    stopped_at: float
    busy_s: float = Field(description="Seconds spent executing engine steps.")
    gpus: int
    num_requests: int = Field(0, description="Requests it completed.")


class LatencyStats(BaseModel):
    """Seconds; None when no request has the quantity."""

    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    count: int

    @classmethod
    def of(cls, values: np.ndarray) -> "LatencyStats":
        values = values[~np.isnan(values)]
        if len(values) == 0:
            return cls(mean=None, p50=None, p90=None, p95=None, p99=None, count=0)
        p50, p90, p95, p99 = (float(x) for x in np.percentile(values, PERCENTILES))
        return cls(mean=float(values.mean()), p50=p50, p90=p90, p95=p95, p99=p99, count=len(values))


class Throughput(BaseModel):
    requests_per_second: float
    output_tokens_per_second: float
    input_tokens_per_second: float


class TimeSeries(BaseModel):
    """Fleet-wide time-weighted averages per bin of `bin_seconds` starting at t = 0."""

    bin_seconds: float
    kv_cache_usage: list[float] = Field(description="Used KV blocks / blocks of live workers.")
    batch_size: list[float] = Field(description="Running sequences per live worker.")
    live_workers: list[float] = Field(description="Mean number of live (started, not stopped) workers.")


class WorkerStats(BaseModel):
    worker_id: int
    kind: str
    busy_fraction: float = Field(description="busy_s / (stopped_at - started_at).")
    num_requests: int


class SloTarget(BaseModel):
    ttft_seconds: float | None
    tpot_seconds: float | None
    attainment: float | None
    ttft_p99_seconds: float | None = None
    tpot_p99_seconds: float | None = None


class SimMetrics(BaseModel):
    """What users would see: latency distributions, throughput, SLO attainment, utilization."""

    requests: int
    completed: int
    rejected: int
    rejected_by_reason: dict[str, int]
    preemptions: int
    ttft_seconds: LatencyStats
    tpot_seconds: LatencyStats
    e2e_seconds: LatencyStats
    queue_seconds: LatencyStats
    throughput: Throughput
    goodput_requests_per_second: float
    slo: SloTarget | None
    slo_attainment: float | None = Field(description="Fraction of all requests meeting the SLO.")
    slo_met: bool | None = Field(description="slo_attainment >= slo.attainment, and the p99 limits (if any) kept.")
    slo_p99_limits_missed: list[str] = Field(
        default_factory=list, description="the profile's p99 limits the run exceeds, in words (empty: none)")
    kv_cache_usage_mean: float
    batch_size_mean: float
    workers: list[WorkerStats]
    series: TimeSeries
    simulated_seconds: float
    wall_seconds: float
    requests_per_wall_second: float
    unfinished: int = Field(0, description="Requests neither completed nor rejected (requests = completed + "
                            "rejected + unfinished).")
    horizon_seconds: float | None = Field(None, description="The traffic horizon the run was given.")
    queued_at_horizon: int = Field(0, description="Requests that had arrived by the horizon but were not yet admitted.")
    unfinished_at_horizon: int = Field(0, description="Requests that had arrived by the horizon and not finished by it.")
    drain_seconds: float = Field(0.0, description="How long the fleet kept working after the horizon.")
    overloaded: bool = Field(
        False, description="The backlog outlived the horizon: requests were still queued at the horizon and the "
        "drain took longer than OVERLOAD_DRAIN_FRACTION of the horizon and than any request's own service "
        "time. Such a run is billed through its drain, and its monthly figure is not sustainable.")


# A replica that keeps up finishes what it holds at the horizon within about one request's service
# time; a drain longer than this share of the horizon (and than every service time) is a backlog.
OVERLOAD_DRAIN_FRACTION = 0.05


def overload_of(records: RequestRecords, horizon_s: float, end_s: float) -> dict[str, Any]:
    """The horizon-end state of a run: queued and unfinished requests, drain, overloaded."""
    arrived = records.arrival_at <= horizon_s
    served_or_cut = (records.rejected_reason == "") | (records.rejected_reason == "unserved_at_end")
    with np.errstate(invalid="ignore"):
        admitted = records.admitted_at <= horizon_s
        finished = records.finished_at <= horizon_s
        service = records.finished_at - records.admitted_at
    queued = int(np.count_nonzero(arrived & ~admitted & served_or_cut))
    drain_s = max(0.0, float(end_s) - float(horizon_s))
    done_service = service[finished & ~np.isnan(service)]
    longest_service_s = float(done_service.max()) if done_service.size else 0.0
    return {
        "horizon_seconds": float(horizon_s),
        "queued_at_horizon": queued,
        "unfinished_at_horizon": int(np.count_nonzero(arrived & ~finished & served_or_cut)),
        "drain_seconds": drain_s,
        "overloaded": bool(queued > 0 and drain_s > max(OVERLOAD_DRAIN_FRACTION * horizon_s, longest_service_s)),
    }


def slo_target(slo: Any) -> SloTarget | None:
    if slo is None:
        return None
    return SloTarget(
        ttft_seconds=getattr(slo, "ttft_seconds", None),
        tpot_seconds=getattr(slo, "tpot_seconds", None),
        attainment=getattr(slo, "attainment", None),
        ttft_p99_seconds=getattr(slo, "ttft_p99_seconds", None),
        tpot_p99_seconds=getattr(slo, "tpot_p99_seconds", None),
    )


# NOTE: relative slack on the SLO thresholds so a latency that equals its limit up to float
# rounding (e.g. a step time summed from several terms) is not counted as a miss.
SLO_RELATIVE_TOLERANCE = 1e-9


def request_slo(
    arrival_at: np.ndarray,
    first_token_at: np.ndarray,
    finished_at: np.ndarray,
    output_tokens: np.ndarray,
    ttft_slo_s: float | None,
    tpot_slo_s: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per request (TTFT s, TPOT s, meets the SLO): the one SLO rule every caller uses.

    TTFT is NaN for a request never started; TPOT is NaN unless it completed with >= 2 output
    tokens. A request meets the SLO when it completed, its TTFT is within `ttft_slo_s` and its TPOT
    within `tpot_slo_s` (a one-token request has no TPOT, so only its TTFT counts); rejected and
    unfinished requests miss. A None threshold is not checked. Both thresholds get
    `SLO_RELATIVE_TOLERANCE` of slack for float noise.
    """
    arrival = np.asarray(arrival_at, dtype=np.float64)
    first = np.asarray(first_token_at, dtype=np.float64)
    finish = np.asarray(finished_at, dtype=np.float64)
    out = np.asarray(output_tokens, dtype=np.float64)
    done = ~np.isnan(finish)
    ttft = first - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(done & (out > 1), (finish - first) / np.maximum(out - 1, 1), np.nan)
        met = done & ~np.isnan(ttft)
        if ttft_slo_s is not None:
            met &= ttft <= ttft_slo_s * (1 + SLO_RELATIVE_TOLERANCE)
        if tpot_slo_s is not None:
            met &= np.isnan(tpot) | (tpot <= tpot_slo_s * (1 + SLO_RELATIVE_TOLERANCE))
    return ttft, tpot, met


def p99_limits_missed(slo: Any, ttft_p99_s: float | None, tpot_p99_s: float | None) -> list[str]:
    """The SLO's optional p99 limits (`ttft_p99_seconds`, `tpot_p99_seconds`) a run exceeds, in words.

    The run-level companion of `request_slo`: a run meets its SLO when attainment reaches the
    target and no limit is listed here. A run with no p99 value (no request started) exceeds a
    set limit. The same `SLO_RELATIVE_TOLERANCE` applies.
    """
    out = []
    for name, value in (("TTFT", ttft_p99_s), ("TPOT", tpot_p99_s)):
        limit = getattr(slo, f"{name.lower()}_p99_seconds", None) if slo is not None else None
        if limit is None:
            continue
        if value is None:
            out.append(f"p99 {name} unknown (no request has one), limit {limit:g} s")
        elif value > limit * (1 + SLO_RELATIVE_TOLERANCE):
            out.append(f"p99 {name} {value:.3g} s is above the {limit:g} s limit")
    return out


def waited_for_start(records: Any, spans: Any) -> np.ndarray:
    """Per request: it was served by a worker that was still starting when it arrived.

    Such a request waited (part of) a cold start (a serverless worker's, or a pod's provisioning
    delay) before any token: the report counts how many SLO misses these are. Records without a
    `replica` column (test doubles) count none.
    """
    replica = getattr(records, "replica", None)
    n = len(records.arrival_at)
    if replica is None or not len(spans):
        return np.zeros(n, dtype=bool)
    ids = [int(s.worker_id) for s in spans]
    ready = np.full(max(ids) + 1, -np.inf)
    for wid, s in zip(ids, spans):
        ready[wid] = np.inf if s.ready_at is None else float(s.ready_at)
    replica = np.asarray(replica, dtype=np.int64)
    served = (replica >= 0) & (replica < len(ready))
    out = np.zeros(n, dtype=bool)
    out[served] = ready[replica[served]] > np.asarray(records.arrival_at, dtype=np.float64)[served]
    return out


def compute_metrics(
    records: RequestRecords,
    spans: list[WorkerSpan],
    slo: Any,
    *,
    num_gpu_blocks: int,
    batch_area: list[float],
    blocks_area: list[float],
    bin_s: float,
    num_preemptions: int,
    simulated_seconds: float,
    wall_seconds: float,
    horizon_s: float | None = None,
) -> SimMetrics:
    """Summarize a run. `batch_area` / `blocks_area` are per-bin time integrals summed over workers."""
    done = records.completed
    e2e = records.finished_at - records.arrival_at
    queue = records.admitted_at - records.arrival_at
    out = records.output_tokens
    rejected = records.rejected_reason != ""
    reasons, counts = np.unique(records.rejected_reason[rejected], return_counts=True)
    target = slo_target(slo)
    ttft, tpot, met = request_slo(
        records.arrival_at, records.first_token_at, records.finished_at, out,
        None if target is None else target.ttft_seconds, None if target is None else target.tpot_seconds,
    )
    n = len(records)
    attainment = met_count = None
    if target is not None:
        met_count = int(met.sum())
        attainment = met_count / n if n else 1.0
    ttft_stats, tpot_stats = LatencyStats.of(ttft), LatencyStats.of(tpot)
    limits_missed = p99_limits_missed(target, ttft_stats.p99, tpot_stats.p99)
    sim_s = max(simulated_seconds, 1e-12)
    series = _series(spans, num_gpu_blocks, batch_area, blocks_area, bin_s, simulated_seconds)
    live_s = sum(s.stopped_at - s.started_at for s in spans)
    total_batch = float(sum(batch_area))
    total_blocks = float(sum(blocks_area))
    return SimMetrics(
        requests=n,
        completed=int(done.sum()),
        rejected=int(rejected.sum()),
        rejected_by_reason={str(r): int(c) for r, c in zip(reasons, counts)},
        preemptions=num_preemptions,
        ttft_seconds=ttft_stats,
        tpot_seconds=tpot_stats,
        e2e_seconds=LatencyStats.of(e2e),
        queue_seconds=LatencyStats.of(queue),
        throughput=Throughput(
            requests_per_second=float(done.sum()) / sim_s,
            output_tokens_per_second=float(out[done].sum()) / sim_s,
            input_tokens_per_second=float(records.prompt_tokens[done].sum()) / sim_s,
        ),
        goodput_requests_per_second=(met_count if met_count is not None else int(done.sum())) / sim_s,
        slo=target,
        slo_attainment=attainment,
        slo_met=None if target is None or target.attainment is None or attainment is None
        else attainment >= target.attainment and not limits_missed,
        slo_p99_limits_missed=limits_missed,
        kv_cache_usage_mean=total_blocks / (live_s * num_gpu_blocks) if live_s > 0 else 0.0,
        batch_size_mean=total_batch / live_s if live_s > 0 else 0.0,
        workers=[
            WorkerStats(
                worker_id=s.worker_id,
                kind=s.kind,
                busy_fraction=s.busy_s / (s.stopped_at - s.started_at) if s.stopped_at > s.started_at else 0.0,
                num_requests=s.num_requests,
            )
            for s in spans
        ],
        series=series,
        simulated_seconds=simulated_seconds,
        wall_seconds=wall_seconds,
        requests_per_wall_second=n / wall_seconds if wall_seconds > 0 else 0.0,
        unfinished=int(np.count_nonzero(~done & ~rejected)),
        **(overload_of(records, horizon_s, simulated_seconds) if horizon_s is not None else {}),
    )


def _series(
    spans: list[WorkerSpan],
    num_gpu_blocks: int,
    batch_area: list[float],
    blocks_area: list[float],
    bin_s: float,
    end_s: float,
) -> TimeSeries:
    num_bins = max(1, int(np.ceil(end_s / bin_s)), len(batch_area))
    edges = np.arange(num_bins + 1) * bin_s
    live = np.zeros(num_bins)  # worker-seconds alive per bin
    for s in spans:
        live += np.clip(np.minimum(edges[1:], s.stopped_at) - np.maximum(edges[:-1], s.started_at), 0.0, None)
    batch = np.zeros(num_bins)
    blocks = np.zeros(num_bins)
    batch[: len(batch_area)] = batch_area
    blocks[: len(blocks_area)] = blocks_area
    with np.errstate(invalid="ignore", divide="ignore"):
        batch_mean = np.where(live > 0, batch / live, 0.0)
        kv_usage = np.where(live > 0, blocks / (live * num_gpu_blocks), 0.0)
    return TimeSeries(
        bin_seconds=bin_s,
        kv_cache_usage=[round(float(x), 6) for x in kv_usage],
        batch_size=[round(float(x), 4) for x in batch_mean],
        live_workers=[round(float(x), 4) for x in live / bin_s],
    )
