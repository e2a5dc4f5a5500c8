"""Synthetic arrival processes (Poisson, gamma, on/off, diurnal, piecewise) and request-size distributions."""

from __future__ import annotations

import math

import numpy as np

from planner.errors import PlannerError
from planner.inputs.profile import (
    MAX_TOKENS,
    DiurnalArrivals,
    WEEKDAYS,
    EmpiricalSizes,
    FixedSizes,
    GammaArrivals,
    LognormalSizes,
    LognormalTokens,
    OnOffArrivals,
    PiecewiseArrivals,
    PoissonArrivals,
    UniformSizes,
)
from planner.traffic.traces import read_trace

SyntheticArrivals = PoissonArrivals | GammaArrivals | OnOffArrivals | DiurnalArrivals | PiecewiseArrivals
SyntheticSizes = FixedSizes | UniformSizes | LognormalSizes | EmpiricalSizes

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
    """Rate at each clock hour for a diurnal spec, requests/s.

    Clock hours count from midnight of the first day (start_hour + t / 3600): 0-24 is the first
    day, 24-48 the second, and each day takes its weekday's factor (`day_factors`).
    """
    clock_hours = np.asarray(clock_hours, dtype=np.float64)
    h = np.mod(clock_hours, 24.0)
    first = WEEKDAYS.index(spec.start_weekday)
    day = (first + np.floor(clock_hours / 24.0).astype(np.int64)) % 7
    factors = np.asarray(spec.day_factors())
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
    if spec.mean_rate_per_s is None:
        factors = factors / factors.max()  # the peak is the busiest day's
    return level * shape / norm * factors[day]


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
        return float(np.max(diurnal_rate_per_s(spec, np.arange(0, 7 * 24, 0.25)))) * horizon_s
    if isinstance(spec, PiecewiseArrivals):
        return max(s.rate_per_s for s in spec.segments) * horizon_s
    return 0.0


# Above this many requests a run takes minutes: the CLI says so before it starts. The speed is the
# simulator benchmark's (BENCHMARKS.md, bench/sim_speed.py: 29,971 requests/s for a day at 20 req/s
# on one core of the 2-core CI machine); overloaded or long-context runs are slower.
LONG_RUN_REQUESTS = 1_000_000
SIM_REQUESTS_PER_S = 30_000.0


def long_run_note(num_requests: int) -> str | None:
    """A warning with a time estimate for a workload of more than LONG_RUN_REQUESTS, else None."""
    if num_requests <= LONG_RUN_REQUESTS:
        return None
    minutes = num_requests / SIM_REQUESTS_PER_S / 60
    return (f"note: {num_requests:,} requests to simulate: about {minutes:,.0f} min at ~{SIM_REQUESTS_PER_S:,.0f} "
            f"requests/s (estimated from the simulator benchmark; the limit is {MAX_REQUESTS:,}); "
            "shorten traffic.horizon_seconds for a quicker answer")


_RATE_FIELD = {PoissonArrivals: "rate_per_s", GammaArrivals: "rate_per_s", OnOffArrivals: "burst_rate_per_s",
               PiecewiseArrivals: "segments.rate_per_s"}


def _steps(spec: SyntheticArrivals, horizon_s: float) -> tuple[float, str]:
    """(how many constant-rate steps the generator builds, the field that sets their length)."""
    if isinstance(spec, OnOffArrivals):
        short = "mean_burst_seconds" if spec.mean_burst_seconds <= spec.mean_gap_seconds else "mean_gap_seconds"
        return 2 * horizon_s / min(spec.mean_burst_seconds, spec.mean_gap_seconds), short
    if isinstance(spec, DiurnalArrivals):
        return horizon_s / (3600.0 if spec.hourly_multipliers is not None else 60.0), "horizon_seconds"
    if isinstance(spec, PiecewiseArrivals):
        cycle_s = sum(s.duration_seconds for s in spec.segments)
        return len(spec.segments) * (horizon_s / cycle_s if spec.repeat else 1.0), "segments.duration_seconds"
    return 0.0, ""


def check_size(spec: SyntheticArrivals, horizon_s: float) -> None:
    """Refuse, before allocating anything, a workload whose arrays would exceed MAX_REQUESTS entries:
    too many requests, or too many rate steps (on/off periods, schedule segments) over the horizon."""
    expected = expected_requests(spec, horizon_s)
    if not expected <= MAX_REQUESTS:  # also NaN
        field = _RATE_FIELD.get(type(spec), "mean_rate_per_s / peak_rate_per_s / hourly_multipliers")
        raise PlannerError(
            f"traffic.arrivals.{field}: about {expected:,.0f} requests over {horizon_s:,.0f} s is more than "
            f"{MAX_REQUESTS:,} (the limit); check the rate (requests per second) or shorten traffic.horizon_seconds"
        )
    steps, field = _steps(spec, horizon_s)
    if steps > MAX_REQUESTS:
        raise PlannerError(
            f"traffic.arrivals.{field}: {steps:,.3g} rate changes over {horizon_s:,.0f} s is more than "
            f"{MAX_REQUESTS:,} (the limit); use longer periods or a shorter traffic.horizon_seconds"
        )


def arrival_times(spec: SyntheticArrivals, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [0, horizon_s) for a synthetic arrival spec (not a trace)."""
    check_size(spec, horizon_s)
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


# ------------------------------------------------------------------------------- request sizes
def _lognormal(spec: LognormalTokens, n: int, rng: np.random.Generator) -> np.ndarray:
    mu, sigma = spec.mu_sigma()
    # Clip in floating point, before the integer cast: exp() of a far tail overflows int64 (it
    # would wrap to a negative count and be floored to min_tokens instead of capped).
    hi = float(spec.max_tokens if spec.max_tokens is not None else MAX_TOKENS)
    with np.errstate(over="ignore"):
        values = np.exp(mu + sigma * rng.standard_normal(n))
    return np.clip(np.rint(values), spec.min_tokens, hi).astype(np.int64)


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


