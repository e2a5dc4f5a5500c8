"""The `Workload` (arrival times and request sizes over a horizon) and its statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, Field

from planner.errors import PlannerError
from planner.units import per_month


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


