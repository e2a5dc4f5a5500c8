"""Traffic: arrival processes, request sizes, trace readers, and the `Workload` they produce.

Generation is vectorized numpy and deterministic for a seed: arrivals and sizes draw from two
independent streams spawned from the seed, so changing the size distribution leaves the arrival
times unchanged. Every non-homogeneous process (on-off bursts, diurnal, piecewise schedules) is
drawn exactly by inverting its cumulative intensity: N ~ Poisson(Lambda(H)) points uniform on
[0, Lambda(H)] mapped back through Lambda^-1 (Lewis & Shedler's time-change theorem), with no
per-arrival Python loop. Trace readers are the only I/O here.

Oversized requests (prompt + output > max_model_len): synthetic sizes are capped (the output kept,
the prompt truncated to what is left, as a client trims old context); a trace's own sizes are kept as they are, so
the simulator rejects them with a reason, unless the profile says `oversize: cap`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
import numpy as np
from pydantic import BaseModel, Field

from planner.billing import SECONDS_PER_MONTH, per_month
from planner.errors import PlannerError
from planner.profile import (
    DiurnalArrivals,
    EmpiricalSizes,
    FixedSizes,
    GammaArrivals,
    LognormalSizes,
    LognormalTokens,
    OnOffArrivals,
    PiecewiseArrivals,
    PoissonArrivals,
    Profile,
    TraceArrivals,
    TrafficSection,
    UniformSizes,
)

SyntheticArrivals = PoissonArrivals | GammaArrivals | OnOffArrivals | DiurnalArrivals | PiecewiseArrivals
SyntheticSizes = FixedSizes | UniformSizes | LognormalSizes | EmpiricalSizes

__all__ = [
    "Workload",
    "TokenStats",
    "TrafficStats",
    "generate_workload",
    "generate",
    "read_trace",
    "trace_stats",
    "cap_sizes",
    "describe_traffic",
    "SECONDS_PER_MONTH",
]


# ------------------------------------------------------------------------------------ workload
@dataclass(frozen=True, eq=False)  # eq=False: identity equality (arrays have no truth value)
class Workload:
    """A list of requests: arrival times and token counts, as read-only numpy arrays.

    Attributes:
        arrival_s: arrival times, seconds from the start of the horizon (float64, sorted).
        prompt_tokens: prompt length of each request (int64).
        output_tokens: tokens to generate for each request (int64, >= 1).
        horizon_s: the simulated period the requests belong to, seconds.
        source: a human description (process and parameters, or the trace file).
        num_capped: requests whose sizes were capped to max_model_len.
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    horizon_s: float
    source: str = ""
    num_capped: int = field(default=0)

    def __post_init__(self) -> None:
        arrival = np.ascontiguousarray(self.arrival_s, dtype=np.float64)
        prompt = np.ascontiguousarray(self.prompt_tokens, dtype=np.int64)
        output = np.ascontiguousarray(self.output_tokens, dtype=np.int64)
        if not (arrival.ndim == prompt.ndim == output.ndim == 1):
            raise ValueError("Workload arrays must be one-dimensional")
        if not (len(arrival) == len(prompt) == len(output)):
            raise ValueError("Workload arrays must have equal lengths")
        if len(arrival) > 1 and np.any(np.diff(arrival) < 0):
            raise ValueError("Workload.arrival_s must be sorted")
        if not self.horizon_s > 0:
            raise ValueError("Workload.horizon_s must be > 0")
        for arr in (arrival, prompt, output):
            arr.flags.writeable = False
        # Frozen dataclass: assign the normalized arrays through object.__setattr__.
        object.__setattr__(self, "arrival_s", arrival)
        object.__setattr__(self, "prompt_tokens", prompt)
        object.__setattr__(self, "output_tokens", output)
        object.__setattr__(self, "horizon_s", float(self.horizon_s))

    def __len__(self) -> int:
        return len(self.arrival_s)

    def __reduce__(self):  # noqa: ANN204
        # Pickle (e.g. to worker processes) through the constructor so copies stay validated and read-only.
        return (Workload, (self.arrival_s, self.prompt_tokens, self.output_tokens, self.horizon_s,
                           self.source, self.num_capped))

    @property
    def month_factor(self) -> float:
        """Multiply a cost over the horizon by this to get a month (the horizon repeated back to back)."""
        return per_month(1.0, self.horizon_s)

    @property
    def mean_rate_per_s(self) -> float:
        """Requests per second over the horizon."""
        return len(self) / self.horizon_s

    def slice(self, start_s: float, end_s: float) -> Workload:
        """Requests arriving in [start_s, end_s), shifted so start_s becomes 0; horizon end - start."""
        if not end_s > start_s:
            raise PlannerError(f"slice needs end_s > start_s (got {start_s}, {end_s})")
        lo, hi = np.searchsorted(self.arrival_s, [start_s, end_s], side="left")
        return Workload(
            self.arrival_s[lo:hi] - start_s,
            self.prompt_tokens[lo:hi],
            self.output_tokens[lo:hi],
            end_s - start_s,
            f"{self.source} [{start_s:g}, {end_s:g}) s",
        )

    def scale_rate(self, factor: float) -> Workload:
        """The same requests with time compressed by `factor` (factor 2 = twice the rate, half the horizon)."""
        if not factor > 0:
            raise PlannerError(f"rate scale factor must be > 0 (got {factor})")
        return Workload(
            self.arrival_s / factor,
            self.prompt_tokens,
            self.output_tokens,
            self.horizon_s / factor,
            f"{self.source} x{factor:g} rate",
            self.num_capped,
        )


# --------------------------------------------------------------------------------------- stats
class TokenStats(BaseModel):
    """Distribution of one token count over the requests (percentiles by linear interpolation)."""

    mean: float
    p50: float
    p90: float
    p99: float
    max: int


class TrafficStats(BaseModel):
    """What `planner traffic` reports about a workload."""

    source: str
    requests: int
    horizon_seconds: float
    duration_seconds: float = Field(description="Last arrival - first arrival.")
    mean_rate_per_s: float = Field(description="requests / duration_seconds.")
    peak_requests_1min: int = Field(description="Most requests in any sliding 60 s window.")
    peak_rate_1min_per_s: float = Field(description="peak_requests_1min / 60.")
    peak_rate_1s_per_s: float = Field(description="Most requests in any sliding 1 s window.")
    peak_to_mean_1min: float = Field(description="peak_rate_1min_per_s / mean_rate_per_s.")
    interarrival_cv: float = Field(description="std / mean of the gaps (Poisson = 1).")
    zero_gap_fraction: float = Field(description="Share of gaps that are exactly 0 (batched timestamps).")
    prompt_tokens: TokenStats
    output_tokens: TokenStats
    num_capped: int = Field(0, description="Requests whose sizes were capped to max_model_len.")
    month_factor: float = Field(description="Months per horizon: cost over the horizon x this = a month.")
    profile: str | None = Field(None, description="The profile's name, when generated from one.")
    seed: int | None = Field(None, description="The seed the workload was drawn with (None: a bare trace).")


def _token_stats(values: np.ndarray) -> TokenStats:
    if len(values) == 0:
        return TokenStats(mean=0.0, p50=0.0, p90=0.0, p99=0.0, max=0)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return TokenStats(mean=float(values.mean()), p50=float(p50), p90=float(p90), p99=float(p99), max=int(values.max()))


def peak_window_count(arrival_s: np.ndarray, window_s: float) -> int:
    """Most arrivals in any sliding window [t, t + window_s) (its max is at some arrival's time)."""
    if len(arrival_s) == 0:
        return 0
    ends = np.searchsorted(arrival_s, arrival_s + window_s, side="left")
    return int((ends - np.arange(len(arrival_s))).max())


def trace_stats(workload: Workload) -> TrafficStats:
    """Rates, burstiness and token percentiles of a workload (the issue's `planner traffic` figures)."""
    t = workload.arrival_s
    n = len(t)
    duration = float(t[-1] - t[0]) if n > 1 else 0.0
    gaps = np.diff(t)
    mean_rate = n / duration if duration > 0 else 0.0
    peak_1min = peak_window_count(t, 60.0)
    cv = float(gaps.std() / gaps.mean()) if len(gaps) and gaps.mean() > 0 else 0.0
    return TrafficStats(
        source=workload.source,
        requests=n,
        horizon_seconds=workload.horizon_s,
        duration_seconds=duration,
        mean_rate_per_s=mean_rate,
        peak_requests_1min=peak_1min,
        peak_rate_1min_per_s=peak_1min / 60.0,
        peak_rate_1s_per_s=float(peak_window_count(t, 1.0)),
        peak_to_mean_1min=(peak_1min / 60.0) / mean_rate if mean_rate > 0 else 0.0,
        interarrival_cv=cv,
        zero_gap_fraction=float(np.mean(gaps == 0)) if len(gaps) else 0.0,
        prompt_tokens=_token_stats(workload.prompt_tokens),
        output_tokens=_token_stats(workload.output_tokens),
        num_capped=workload.num_capped,
        month_factor=workload.month_factor,
    )


# -------------------------------------------------------------------------------- trace readers
def detect_format(path: str | Path) -> str:
    """Guess a trace's format: .jsonl = mooncake; a CSV whose header has TIMESTAMP = azure; else csv."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        return "mooncake"
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.readline()
    return "azure" if "timestamp" in head.lower() and "contexttokens" in head.lower() else "csv"


def _parse_tokens(text: str, path: Path, line: int, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise PlannerError(f"{path.name} line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise PlannerError(f"{path.name} line {line}: {column} {text!r} must be a whole number >= 0")
    return int(value)


def _read_azure(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azure LLM inference trace: TIMESTAMP (wall clock text), ContextTokens, GeneratedTokens."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise PlannerError(f"{path.name}: empty trace file")
    header = [h.strip() for h in rows[0]]
    try:
        i_t, i_p, i_o = (header.index(c) for c in ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    except ValueError:
        raise PlannerError(
            f"{path.name} line 1: Azure header must have TIMESTAMP, ContextTokens, GeneratedTokens "
            f"(got {','.join(header)}); use --format csv for a plain CSV"
        ) from None
    stamps: list[str] = []
    prompt: list[int] = []
    output: list[int] = []
    width = max(i_t, i_p, i_o) + 1
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < width:
            raise PlannerError(f"{path.name} line {line}: expected {len(header)} columns, got {len(row)}")
        stamps.append(row[i_t].strip())
        prompt.append(_parse_tokens(row[i_p], path, line, "ContextTokens"))
        output.append(_parse_tokens(row[i_o], path, line, "GeneratedTokens"))
    try:
        times = np.array(stamps, dtype="datetime64[ns]")
    except ValueError:
        for line, stamp in enumerate(stamps, start=2):  # find the bad row to name it
            try:
                np.datetime64(stamp, "ns")
            except ValueError:
                raise PlannerError(
                    f"{path.name} line {line}: TIMESTAMP {stamp!r} is not 'YYYY-MM-DD HH:MM:SS.fff'"
                ) from None
        raise
    if np.isnat(times).any():
        line = int(np.argmax(np.isnat(times))) + 2
        raise PlannerError(f"{path.name} line {line}: TIMESTAMP is empty or NaT")
    seconds = (times - times.min()).astype(np.int64) / 1e9 if len(times) else np.zeros(0)
    return seconds, np.array(prompt, dtype=np.int64), np.array(output, dtype=np.int64)


def _read_mooncake(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mooncake JSONL: timestamp (ms from start), input_length, output_length (hash_ids ignored)."""
    times: list[float] = []
    prompt: list[int] = []
    output: list[int] = []
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                stamp = float(row["timestamp"])
                p, o = row["input_length"], row["output_length"]
            except json.JSONDecodeError as err:
                raise PlannerError(f"{path.name} line {line}: not valid JSON ({err.msg})") from None
            except (KeyError, TypeError) as err:
                raise PlannerError(
                    f"{path.name} line {line}: needs timestamp, input_length, output_length (missing {err})"
                ) from None
            except ValueError:
                raise PlannerError(f"{path.name} line {line}: timestamp is not a number") from None
            if not math.isfinite(stamp):
                raise PlannerError(f"{path.name} line {line}: timestamp is not finite")
            times.append(stamp / 1000.0)  # ms -> s
            prompt.append(_parse_tokens(str(p), path, line, "input_length"))
            output.append(_parse_tokens(str(o), path, line, "output_length"))
    return np.array(times, dtype=np.float64), np.array(prompt, dtype=np.int64), np.array(output, dtype=np.int64)


# Column names a plain CSV header may use (lower case): ours, Vidur's processed traces, Mooncake's.
_CSV_COLUMNS = {
    "arrival": ("arrival_s", "arrival_seconds", "arrival", "arrived_at", "timestamp", "time_s", "time"),
    "prompt": ("prompt_tokens", "num_prefill_tokens", "input_length", "input_tokens", "contexttokens"),
    "output": ("output_tokens", "num_decode_tokens", "output_length", "generatedtokens"),
}


def _read_plain_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain CSV: arrival seconds, prompt tokens, output tokens (an optional header names them)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows_numbered = [(i, r) for i, r in enumerate(rows, start=1) if r and any(c.strip() for c in r)]
    if not rows_numbered:
        raise PlannerError(f"{path.name}: empty trace file")
    cols = (0, 1, 2)
    first = rows_numbered[0][1]
    try:
        float(first[0])
    except ValueError:  # a header row
        names = [c.strip().lower() for c in first]
        found = [next((names.index(n) for n in _CSV_COLUMNS[key] if n in names), None)
                 for key in ("arrival", "prompt", "output")]
        if None in found:
            raise PlannerError(
                f"{path.name} line {rows_numbered[0][0]}: header must name arrival_s, prompt_tokens, "
                f"output_tokens (got {','.join(first)})"
            )
        cols = tuple(found)  # type: ignore[assignment]
        rows_numbered = rows_numbered[1:]
    width = max(cols) + 1
    times = np.empty(len(rows_numbered))
    prompt = np.empty(len(rows_numbered), dtype=np.int64)
    output = np.empty(len(rows_numbered), dtype=np.int64)
    for k, (line, row) in enumerate(rows_numbered):
        if len(row) < width:
            raise PlannerError(f"{path.name} line {line}: expected {width} columns, got {len(row)}")
        try:
            times[k] = float(row[cols[0]])
        except ValueError:
            raise PlannerError(f"{path.name} line {line}: arrival {row[cols[0]]!r} is not a number of seconds") from None
        if not math.isfinite(times[k]):
            raise PlannerError(f"{path.name} line {line}: arrival is not finite")
        prompt[k] = _parse_tokens(row[cols[1]], path, line, "prompt_tokens")
        output[k] = _parse_tokens(row[cols[2]], path, line, "output_tokens")
    return times, prompt, output


@lru_cache(maxsize=16)
def _read_trace_cached(path: str, fmt: str, mtime_ns: int) -> Workload:
    readers = {"azure": _read_azure, "mooncake": _read_mooncake, "csv": _read_plain_csv}
    times, prompt, output = readers[fmt](Path(path))
    if len(times) == 0:
        raise PlannerError(f"{Path(path).name}: the trace has no requests")
    order = np.argsort(times, kind="stable")  # traces are usually sorted; keep ties in file order
    times = times[order] - times[order][0]
    # Every request generates at least one token (the one its TTFT measures).
    output = np.maximum(output[order], 1)
    duration = float(times[-1])
    return Workload(times, prompt[order], output, duration if duration > 0 else 1.0, f"{Path(path).name} ({fmt})")


def read_trace(path: str | Path, format: str | None = None) -> Workload:
    """Read a whole trace; arrivals start at 0, sizes are kept as recorded (no capping).

    Args:
        path: the trace file.
        format: "azure" | "mooncake" | "csv"; None = detected from the file.
    Returns:
        The Workload, horizon_s = last arrival - first (1 s for a single request).
    Raises:
        PlannerError: missing file, unknown format, or a malformed row (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise PlannerError(f"trace file not found: {path}")
    fmt = format or detect_format(path)
    if fmt not in ("azure", "mooncake", "csv"):
        raise PlannerError(f"unknown trace format {fmt!r}: use azure, mooncake or csv")
    return _read_trace_cached(str(path.resolve()), fmt, os.stat(path).st_mtime_ns)


# --------------------------------------------------------------------------- arrival processes
def _nhpp(breaks: np.ndarray, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exact Poisson arrivals with a piecewise-constant rate: rates[j] on [breaks[j], breaks[j+1])."""
    cum = np.concatenate(([0.0], np.cumsum(rates * np.diff(breaks))))
    n = rng.poisson(cum[-1])
    u = np.sort(rng.uniform(0.0, cum[-1], n))
    # NOTE: side="right" picks the last segment whose cumulative start <= u, so zero-rate segments
    # (where cum does not grow) are never chosen.
    seg = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(rates) - 1)
    safe = np.where(rates[seg] > 0, rates[seg], 1.0)
    return breaks[seg] + (u - cum[seg]) / safe


def _gamma_arrivals(spec: GammaArrivals, horizon: float, rng: np.random.Generator) -> np.ndarray:
    shape = 1.0 / spec.cv**2  # gamma with shape k has cv 1/sqrt(k)
    scale = 1.0 / (spec.rate_per_s * shape)  # mean gap k * scale = 1 / rate
    expected = spec.rate_per_s * horizon
    chunks: list[np.ndarray] = []
    last = 0.0
    while last < horizon:
        size = int(expected + 6 * math.sqrt(expected * max(spec.cv, 1.0) ** 2) + 16)
        times = last + np.cumsum(rng.gamma(shape, scale, size))
        chunks.append(times)
        last = float(times[-1])
    times = np.concatenate(chunks)
    return times[times < horizon]


def _onoff_rates(spec: OnOffArrivals, horizon: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Alternating exponential burst / gap periods covering the horizon (stationary start)."""
    cycle = spec.mean_burst_seconds + spec.mean_gap_seconds
    burst_first = rng.random() < spec.mean_burst_seconds / cycle
    durations: list[np.ndarray] = []
    total = 0.0
    while total < horizon:
        pairs = int(horizon / cycle) + 8
        bursts = rng.exponential(spec.mean_burst_seconds, pairs)
        gaps = rng.exponential(spec.mean_gap_seconds, pairs)
        chunk = np.column_stack((bursts, gaps) if burst_first else (gaps, bursts)).ravel()
        durations.append(chunk)
        total += float(chunk.sum())
    d = np.concatenate(durations)
    breaks = np.concatenate(([0.0], np.cumsum(d)))
    k = int(np.searchsorted(breaks, horizon, side="left"))
    breaks = np.append(breaks[:k], horizon)
    state_rates = (spec.burst_rate_per_s, spec.base_rate_per_s) if burst_first else (spec.base_rate_per_s, spec.burst_rate_per_s)
    rates = np.resize(np.array(state_rates, dtype=np.float64), len(breaks) - 1)
    return breaks, rates


def diurnal_rate_per_s(spec: DiurnalArrivals, clock_hours: np.ndarray) -> np.ndarray:
    """Rate at each clock hour (0-24) of the day for a diurnal spec, requests/s."""
    h = np.mod(clock_hours, 24.0)
    if spec.hourly_multipliers is not None:
        m = np.asarray(spec.hourly_multipliers, dtype=np.float64)
        shape = m[np.minimum(h.astype(np.int64), 23)]
        norm = m.mean() if spec.mean_rate_per_s is not None else m.max()
    else:
        # Sinusoid with mean 1 and peak/trough = r: 1 + a cos(.), a = (r - 1) / (r + 1).
        r = float(spec.peak_to_trough)  # type: ignore[arg-type]
        a = (r - 1.0) / (r + 1.0)
        shape = 1.0 + a * np.cos(2 * np.pi * (h - spec.peak_hour) / 24.0)
        norm = 1.0 if spec.mean_rate_per_s is not None else 1.0 + a
    level = spec.mean_rate_per_s if spec.mean_rate_per_s is not None else spec.peak_rate_per_s
    return level * shape / norm


def _diurnal_rates(spec: DiurnalArrivals, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    if spec.hourly_multipliers is not None:
        # Exact steps at each clock-hour boundary.
        first = (math.floor(spec.start_hour) + 1 - spec.start_hour) * 3600.0
        inner = np.arange(first, horizon, 3600.0)
        breaks = np.concatenate(([0.0], inner[inner > 0], [horizon]))
    else:
        # The sinusoid held constant over 60 s steps at its mid-step value: within a step it is off by
        # at most a * pi * 60 / 86400 (< 0.22%) of the mean rate, and each step's expected count is
        # exact to second order (midpoint rule).
        breaks = np.append(np.arange(0.0, horizon, 60.0), horizon)
    mids = (breaks[:-1] + breaks[1:]) / 2
    return breaks, diurnal_rate_per_s(spec, spec.start_hour + mids / 3600.0)


def _piecewise_rates(spec: PiecewiseArrivals, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    durations = np.array([s.duration_seconds for s in spec.segments])
    seg_rates = np.array([s.rate_per_s for s in spec.segments])
    cycles = max(1, math.ceil(horizon / durations.sum())) if spec.repeat else 1
    d = np.tile(durations, cycles)
    r = np.tile(seg_rates, cycles)
    breaks = np.concatenate(([0.0], np.cumsum(d)))
    if breaks[-1] < horizon:  # schedule ended: rate 0 to the horizon
        breaks, r = np.append(breaks, horizon), np.append(r, 0.0)
    k = int(np.searchsorted(breaks, horizon, side="left"))
    return np.append(breaks[:k], horizon), r[:k]


# More requests than this in one workload is a mistake (e.g. a rate in requests per hour given per
# second): ~1.2 GB of arrays and hours of simulation.
MAX_REQUESTS = 50_000_000


def expected_requests(spec: SyntheticArrivals, horizon_s: float) -> float:
    """Mean number of arrivals of a synthetic spec over horizon_s."""
    if isinstance(spec, (PoissonArrivals, GammaArrivals)):
        return spec.rate_per_s * horizon_s
    if isinstance(spec, OnOffArrivals):
        cycle = spec.mean_burst_seconds + spec.mean_gap_seconds
        return (spec.base_rate_per_s * spec.mean_gap_seconds + spec.burst_rate_per_s * spec.mean_burst_seconds) / cycle * horizon_s
    if isinstance(spec, DiurnalArrivals):
        return float(np.max(diurnal_rate_per_s(spec, np.arange(0, 24, 0.25)))) * horizon_s
    if isinstance(spec, PiecewiseArrivals):
        return max(s.rate_per_s for s in spec.segments) * horizon_s
    return 0.0


def arrival_times(spec: SyntheticArrivals, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [0, horizon_s) for a synthetic arrival spec (not a trace)."""
    expected = expected_requests(spec, horizon_s)
    if expected > MAX_REQUESTS:
        raise PlannerError(
            f"traffic: about {expected:,.0f} requests over {horizon_s:,.0f} s is more than {MAX_REQUESTS:,}; "
            "check the rate (requests per second) or shorten traffic.horizon_seconds"
        )
    if isinstance(spec, PoissonArrivals):
        n = rng.poisson(spec.rate_per_s * horizon_s)
        return np.sort(rng.uniform(0.0, horizon_s, n))
    if isinstance(spec, GammaArrivals):
        return _gamma_arrivals(spec, horizon_s, rng)
    if isinstance(spec, OnOffArrivals):
        return _nhpp(*_onoff_rates(spec, horizon_s, rng), rng)
    if isinstance(spec, DiurnalArrivals):
        return _nhpp(*_diurnal_rates(spec, horizon_s), rng)
    if isinstance(spec, PiecewiseArrivals):
        return _nhpp(*_piecewise_rates(spec, horizon_s), rng)
    raise PlannerError(f"unsupported arrival process {type(spec).__name__}")


# ------------------------------------------------------------------------------- trace replay
def _batch_jitter(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spread requests that share a timestamp uniformly over the gap to the next distinct one."""
    distinct, first_idx, counts = np.unique(t, return_index=True, return_counts=True)
    if len(distinct) == len(t):
        return t
    gaps = np.diff(distinct)
    last_gap = float(np.median(gaps)) if len(gaps) else 0.0
    width = np.append(gaps, last_gap)
    group = np.repeat(np.arange(len(distinct)), counts)  # t is sorted: groups are contiguous
    return t + rng.uniform(0.0, 1.0, len(t)) * width[group]


def _replay(spec: TraceArrivals, horizon_s: float | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Transformed trace arrival times, the trace row each comes from, and the horizon."""
    trace = read_trace(spec.path, spec.format)
    t = trace.arrival_s
    rows = np.arange(len(t))
    keep = t >= spec.start_offset_seconds
    t, rows = t[keep] - spec.start_offset_seconds, rows[keep]
    if len(t) == 0:
        raise PlannerError(
            f"traffic.arrivals.start_offset_seconds: {spec.start_offset_seconds} s skips the whole trace "
            f"(it lasts {trace.horizon_s:.1f} s)"
        )
    if spec.jitter == "batch":
        t = _batch_jitter(t, rng)
    elif spec.jitter:
        t = t + rng.uniform(0.0, float(spec.jitter), len(t))
    t = t * spec.time_scale
    if spec.rate_scale != 1.0:
        # Keep floor(f) copies of each request and one more with probability frac(f); the first copy
        # stays at its time, extra copies fall uniformly in the gap to the next request, so the
        # minute-scale shape of the trace is kept while its rate scales by f.
        order = np.argsort(t, kind="stable")
        t, rows = t[order], rows[order]
        f = spec.rate_scale
        copies = np.floor(f).astype(np.int64) + (rng.random(len(t)) < f - math.floor(f))
        gaps = np.append(np.diff(t), np.diff(t).mean() if len(t) > 1 else 1.0)
        src = np.repeat(np.arange(len(t)), copies)
        starts = np.cumsum(copies) - copies
        rank = np.arange(len(src)) - np.repeat(starts, copies)
        first_copy = rank == 0
        offsets = np.where(first_copy, 0.0, rng.uniform(0.0, 1.0, len(src)) * gaps[src])
        t, rows = t[src] + offsets, rows[src]
        if len(t) == 0:
            raise PlannerError("traffic.arrivals.rate_scale: thinned the trace to no requests; raise it")
    order = np.argsort(t, kind="stable")
    t, rows = t[order], rows[order]
    span = float(t[-1])
    if horizon_s is None:
        return t, rows, span if span > 0 else 1.0
    if spec.loop and span < horizon_s:
        # Repeat back to back; a lap lasts the span plus one mean gap so laps do not collide.
        period = span + (span / (len(t) - 1) if len(t) > 1 else 1.0)
        laps = math.ceil(horizon_s / period)
        t = (t[None, :] + period * np.arange(laps)[:, None]).ravel()
        rows = np.tile(rows, laps)
    keep = t < horizon_s
    return t[keep], rows[keep], horizon_s


# ------------------------------------------------------------------------------- request sizes
def _lognormal(spec: LognormalTokens, n: int, rng: np.random.Generator) -> np.ndarray:
    mu, sigma = spec.mu_sigma()
    values = np.rint(np.exp(mu + sigma * rng.standard_normal(n))).astype(np.int64)
    return np.clip(values, spec.min_tokens, spec.max_tokens if spec.max_tokens is not None else None)


def request_sizes(spec: SyntheticSizes, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(prompt_tokens, output_tokens) for n requests from a synthetic size spec."""
    if isinstance(spec, FixedSizes):
        return np.full(n, spec.prompt_tokens, np.int64), np.full(n, spec.output_tokens, np.int64)
    if isinstance(spec, UniformSizes):
        (plo, phi), (olo, ohi) = spec.prompt_tokens, spec.output_tokens
        return rng.integers(plo, phi + 1, n), rng.integers(olo, ohi + 1, n)
    if isinstance(spec, LognormalSizes):
        return _lognormal(spec.prompt_tokens, n, rng), _lognormal(spec.output_tokens, n, rng)
    if isinstance(spec, EmpiricalSizes):
        trace = read_trace(spec.path, spec.format)
        m = len(trace)
        i = rng.integers(0, m, n)
        j = i if spec.joint else rng.integers(0, m, n)
        return trace.prompt_tokens[i].copy(), trace.output_tokens[j].copy()
    raise PlannerError(f"unsupported size distribution {type(spec).__name__}")


def cap_sizes(prompt: np.ndarray, output: np.ndarray, max_model_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cap so prompt + output <= max_model_len: keep the output, truncate the prompt.

    Like a client that trims the oldest context to leave room for the reply: the output is kept
    (>= 1, and leaving a non-empty prompt one token) and the prompt cut to max_model_len - output.

    Returns:
        (prompt, output, number of requests changed).
    """
    if max_model_len < 2:
        raise PlannerError(f"serving.max_model_len must be >= 2 to hold a prompt and a token (got {max_model_len})")
    # A non-empty prompt keeps at least one token; an empty one leaves the whole length to the output.
    o = np.clip(output, 1, max_model_len - np.minimum(prompt, 1))
    p = np.minimum(prompt, max_model_len - o)
    changed = int(np.count_nonzero((p != prompt) | (o != output)))
    return p, o, changed


# ---------------------------------------------------------------------------------- generation
def _describe(traffic: TrafficSection, seed: int) -> str:
    a = traffic.arrivals
    params = ", ".join(f"{k}={v}" for k, v in a.model_dump(exclude={"process", "path"}).items() if v is not None)
    what = f"{a.process}({params})" if not isinstance(a, TraceArrivals) else f"trace {Path(a.path).name} ({params})"
    sizes = "trace sizes" if traffic.sizes_from_trace else f"{traffic.sizes.distribution} sizes"  # type: ignore[union-attr]
    return f"{what}; {sizes}; seed {seed}"


def generate_workload(
    source: Profile | TrafficSection,
    seed: int | None = None,
    max_model_len: int | None = None,
) -> Workload:
    """Draw (or replay) the requests a profile's traffic section describes.

    Args:
        source: a Profile (its serving.max_model_len is the default cap) or a TrafficSection.
        seed: random seed; None = traffic.seed. The same seed gives the same workload.
        max_model_len: cap for prompt + output tokens; None = the profile's, or no cap.
    Returns:
        The Workload over traffic's horizon (a trace without horizon_seconds: its span).
    """
    if isinstance(source, Profile):
        traffic = source.traffic
        if max_model_len is None:
            max_model_len = source.serving.max_model_len
    else:
        traffic = source
    seed = traffic.seed if seed is None else int(seed)
    if seed < 0:
        raise PlannerError(f"seed must be a non-negative integer (got {seed})")
    arrivals_ss, sizes_ss = np.random.SeedSequence(seed).spawn(2)
    rng_arrivals, rng_sizes = np.random.default_rng(arrivals_ss), np.random.default_rng(sizes_ss)

    if isinstance(traffic.arrivals, TraceArrivals):
        t, rows, horizon = _replay(traffic.arrivals, traffic.horizon_seconds, rng_arrivals)
    else:
        horizon = float(traffic.default_horizon_seconds)  # type: ignore[arg-type]
        t, rows = arrival_times(traffic.arrivals, horizon, rng_arrivals), None

    if traffic.sizes_from_trace:
        trace = read_trace(traffic.arrivals.path, traffic.arrivals.format)  # type: ignore[union-attr]
        prompt, output = trace.prompt_tokens[rows], trace.output_tokens[rows]
        oversize = traffic.oversize or "keep"
    else:
        # sizes_from_trace is False: a synthetic size spec (a property mypy cannot see through)
        prompt, output = request_sizes(traffic.sizes, len(t), rng_sizes)  # type: ignore[arg-type]
        oversize = traffic.oversize or "cap"
    num_capped = 0
    if oversize == "cap" and max_model_len is not None:
        prompt, output, num_capped = cap_sizes(prompt, output, max_model_len)
    return Workload(t, prompt, output, horizon, _describe(traffic, seed), num_capped)


generate = generate_workload  # the name docs/ARCHITECTURE.md's profile section uses


def hourly_counts(workload: Workload, bin_s: float = 3600.0) -> np.ndarray:
    """Arrivals per bin of bin_s seconds over the horizon (for shape checks and plots)."""
    bins = max(1, math.ceil(workload.horizon_s / bin_s))
    return np.bincount(np.minimum((workload.arrival_s // bin_s).astype(np.int64), bins - 1), minlength=bins)


def describe_traffic(
    profile: Profile | None = None,
    trace: str | Path | None = None,
    format: str | None = None,
    seed: int | None = None,
    jitter: str | None = None,
) -> tuple[Workload, TrafficStats]:
    """The workload and its statistics for `planner traffic` (a profile, or a bare trace).

    Args:
        profile: draw the profile's traffic (capped at its max_model_len).
        trace: or read this trace file as recorded.
        format: the trace's format (None = detected).
        seed: random seed (profile default: traffic.seed; a bare trace only uses it for jitter).
        jitter: for a bare trace: None, "batch", or seconds of uniform jitter.
    """
    if (profile is None) == (trace is None):
        raise PlannerError("give exactly one of --profile and --trace")
    if profile is not None and (format is not None or jitter is not None):
        raise PlannerError("--format and --jitter apply to --trace only; a profile sets them under traffic.arrivals")
    if profile is not None:
        workload = generate_workload(profile, seed)
        stats = trace_stats(workload)
        return workload, stats.model_copy(
            update={"profile": profile.name, "seed": profile.traffic.seed if seed is None else seed}
        )
    if jitter is None:
        workload = read_trace(trace, format)  # type: ignore[arg-type]
        return workload, trace_stats(workload)
    if jitter != "batch":
        try:
            jitter_seconds = float(jitter)
        except ValueError:
            raise PlannerError(f"--jitter must be 'batch' or a number of seconds (got {jitter!r})") from None
        if not jitter_seconds >= 0:
            raise PlannerError(f"--jitter must be >= 0 seconds (got {jitter})")
        jitter_value: float | str = jitter_seconds
    else:
        jitter_value = "batch"
    if not Path(trace).is_file():  # type: ignore[arg-type]
        raise PlannerError(f"trace file not found: {trace}")
    section = TrafficSection(
        arrivals=TraceArrivals(process="trace", path=str(Path(trace).resolve()), format=format, jitter=jitter_value),  # type: ignore[arg-type]
    )
    used_seed = 0 if seed is None else seed
    workload = generate_workload(section, used_seed)
    return workload, trace_stats(workload).model_copy(update={"seed": used_seed})
