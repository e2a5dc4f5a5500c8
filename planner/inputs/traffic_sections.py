"""The profile's traffic section: arrival processes and request-size distributions (synthetic or a trace)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from planner.inputs.sections import (
    MAX_TOKENS,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    TokenCount,
    TokenRange,
    TraceFile,
    TraceFormat,
    _Section,
)


# ------------------------------------------------------------------------------------- traffic
class PoissonArrivals(_Section):
    """Memoryless arrivals at a constant rate (inter-arrival CV = 1)."""

    process: Literal["poisson"]
    rate_per_s: PositiveFloat


# More concurrent users than a fleet can serve at once: a typo (the first wave is this many requests).
MAX_USERS = 100_000


class GammaArrivals(_Section):
    """Renewal process with gamma inter-arrival gaps: cv > 1 is burstier than Poisson."""

    process: Literal["gamma"]
    rate_per_s: PositiveFloat
    cv: PositiveFloat = Field(
        le=100, description="Coefficient of variation of the gaps (1 = Poisson); at most 100 (burstier is a typo)."
    )


class OnOffArrivals(_Section):
    """Two-state MMPP: Poisson at base_rate in gaps, at burst_rate in bursts; exponential durations."""

    process: Literal["onoff"]
    base_rate_per_s: float = Field(ge=0)
    burst_rate_per_s: PositiveFloat
    mean_burst_seconds: PositiveFloat
    mean_gap_seconds: PositiveFloat

    @model_validator(mode="after")
    def _burst_above_base(self) -> OnOffArrivals:
        if self.burst_rate_per_s < self.base_rate_per_s:
            raise ValueError("burst_rate_per_s must be >= base_rate_per_s")
        return self


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DiurnalArrivals(_Section):
    """A 24-hour shape (sinusoid between trough and peak, or 24 hourly multipliers) on a rate, times a
    relative rate per day of the week (weekday/weekend or per day)."""

    process: Literal["diurnal"]
    mean_rate_per_s: PositiveFloat | None = Field(None, description="Mean rate over a week (give this or peak).")
    peak_rate_per_s: PositiveFloat | None = Field(None, description="Rate at the busiest time of the busiest day.")
    peak_to_trough: float | None = Field(
        None, ge=1, description="Sinusoid shape: peak rate / trough rate (1 = flat)."
    )
    peak_hour: float = Field(14.0, ge=0, lt=24, description="Clock hour of the sinusoid's peak.")
    hourly_multipliers: list[Annotated[float, Field(ge=0, le=1e6)]] | None = Field(
        None, min_length=24, max_length=24, description="24 relative rates, hour 0..23 (step shape)."
    )
    start_hour: float = Field(0.0, ge=0, lt=24, description="Clock hour at t = 0 (in `timezone`).")
    start_weekday: Weekday = Field("monday", description="Day of the week at t = 0.")
    weekday_multiplier: float = Field(1.0, gt=0, le=1000, description="Relative rate Monday to Friday.")
    weekend_multiplier: float = Field(1.0, gt=0, le=1000, description="Relative rate on Saturday and Sunday.")
    day_multipliers: list[Annotated[float, Field(gt=0, le=1000)]] | None = Field(
        None, min_length=7, max_length=7,
        description="7 relative rates, Monday first (instead of weekday/weekend_multiplier).",
    )
    timezone: str = Field("UTC", description="IANA time zone of the clock hours (e.g. Europe/Berlin).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo  # noqa: PLC0415

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Berlin") from None
        return value

    def day_factors(self) -> list[float]:
        """Relative rate per weekday, Monday first, averaging 1 over the week."""
        raw = self.day_multipliers or [self.weekday_multiplier] * 5 + [self.weekend_multiplier] * 2
        mean = sum(raw) / 7.0
        return [x / mean for x in raw]

    @model_validator(mode="after")
    def _one_rate_one_shape(self) -> DiurnalArrivals:
        if (self.mean_rate_per_s is None) == (self.peak_rate_per_s is None):
            raise ValueError("give exactly one of mean_rate_per_s and peak_rate_per_s")
        if (self.peak_to_trough is None) == (self.hourly_multipliers is None):
            raise ValueError("give exactly one of peak_to_trough and hourly_multipliers")
        if self.hourly_multipliers is not None and max(self.hourly_multipliers) <= 0:
            raise ValueError("hourly_multipliers must not all be 0")
        return self


class RateSegment(_Section):
    """One step of a piecewise-constant schedule."""

    duration_seconds: PositiveFloat
    rate_per_s: float = Field(ge=0)


class PiecewiseArrivals(_Section):
    """Poisson arrivals whose rate follows a schedule of constant steps, repeated to the horizon."""

    process: Literal["piecewise"]
    segments: list[RateSegment] = Field(min_length=1)
    repeat: bool = Field(True, description="Cycle the schedule until the horizon (else rate 0 after).")

    @model_validator(mode="after")
    def _some_traffic(self) -> PiecewiseArrivals:
        if all(s.rate_per_s == 0 for s in self.segments):
            raise ValueError("every segment has rate_per_s 0: no traffic")
        return self


class TraceArrivals(_Section):
    """Replay a real trace's arrival times (and, by default, its request sizes)."""

    process: Literal["trace"]
    path: TraceFile = Field(description="Trace file, relative to the profile file.")
    format: TraceFormat | None = Field(None, description="azure | mooncake | csv; None = from the file.")
    start_offset_seconds: float = Field(0.0, ge=0, description="Skip this much of the trace's start.")
    time_scale: PositiveFloat = Field(1.0, description="Stretch time: 2 = half the rate, same requests.")
    rate_scale: PositiveFloat = Field(
        1.0, description="Thin (<1) or replicate (>1) requests on the same timeline."
    )
    loop: bool = Field(False, description="Repeat the trace back to back until the horizon.")
    jitter: Literal["batch"] | Annotated[float, Field(ge=0)] | None = Field(
        None,
        description="None; 'batch' spreads requests sharing a timestamp over the gap to the next "
        "one; a number adds uniform [0, x) seconds to every arrival.",
    )


class _Lognormal(_Section):
    """A lognormal quantity: (mu, sigma) of its logarithm, or two of mean / median / p90 / p99."""

    # ln(x): e^20 is 485 million (tokens or seconds), e^-20 far below one; sigma 10 spans e^±20 in 2 sigmas
    mu: float | None = Field(None, ge=-20, le=20)
    sigma: PositiveFloat | None = Field(None, le=10)
    mean: Annotated[float, Field(gt=0, le=MAX_TOKENS)] | None = None
    median: Annotated[float, Field(gt=0, le=MAX_TOKENS)] | None = None
    p90: Annotated[float, Field(gt=0, le=MAX_TOKENS)] | None = None
    p99: Annotated[float, Field(gt=0, le=MAX_TOKENS)] | None = None

    @model_validator(mode="after")
    def _solvable(self) -> _Lognormal:
        self.mu_sigma()  # raises ValueError with the reason
        return self

    def mu_sigma(self) -> tuple[float, float]:
        """(mu, sigma) of ln(tokens), solved from whichever pair was given."""
        z = {"p90": 1.2815515655446004, "p99": 2.3263478740408408}  # standard normal quantiles
        given = {k for k in ("mu", "sigma", "mean", "median", "p90", "p99") if getattr(self, k) is not None}
        if given == {"mu", "sigma"}:
            return float(self.mu), float(self.sigma)  # type: ignore[arg-type]
        tails = [k for k in ("p90", "p99") if k in given]
        if given == {"mean", "median"}:
            if self.mean <= self.median:  # type: ignore[operator]
                raise ValueError("lognormal needs mean > median")
            # mean = median * exp(sigma^2 / 2)
            return math.log(self.median), math.sqrt(2 * math.log(self.mean / self.median))  # type: ignore[arg-type,operator]
        if len(given) == 2 and "median" in given and len(tails) == 1:
            q = getattr(self, tails[0])
            if q <= self.median:
                raise ValueError(f"lognormal needs {tails[0]} > median")
            return math.log(self.median), math.log(q / self.median) / z[tails[0]]  # type: ignore[arg-type]  # median is given on this branch
        if len(given) == 2 and "mean" in given and len(tails) == 1:
            # ln q = mu + z s and ln m = mu + s^2/2  =>  s^2/2 - z s + ln(q/m) = 0.
            zq, q = z[tails[0]], getattr(self, tails[0])
            disc = zq * zq - 2 * math.log(q / self.mean)
            if q <= self.mean or disc < 0:
                raise ValueError(
                    f"no lognormal has mean {self.mean} and {tails[0]} {q} "
                    f"({tails[0]}/mean must lie in (1, {math.exp(zq * zq / 2):.2f}]); give median instead"
                )
            # NOTE: two roots; the smaller sigma is the one where q grows with sigma (the usual case).
            sigma = zq - math.sqrt(disc)
            return math.log(self.mean) - sigma * sigma / 2, sigma  # type: ignore[arg-type]
        raise ValueError(
            "give mu and sigma, or two of mean/median/p90/p99 (mean+median, median+p90|p99, "
            "mean+p90|p99)"
        )


# ------------------------------------------------------------------ closed loop: think times
class FixedThink(_Section):
    """Every user waits the same time after each completion."""

    distribution: Literal["fixed"]
    seconds: NonNegativeFloat


class UniformThink(_Section):
    """Think time drawn uniformly from [lo, hi] seconds."""

    distribution: Literal["uniform"]
    seconds: Annotated[list[NonNegativeFloat], Field(min_length=2, max_length=2)]

    @field_validator("seconds")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        if value[1] < value[0]:
            raise ValueError("must be [lo, hi] with 0 <= lo <= hi")
        return value


class ExponentialThink(_Section):
    """Memoryless think time with the given mean (an idle user is a Poisson source)."""

    distribution: Literal["exponential"]
    mean_seconds: PositiveFloat


class LognormalThink(_Lognormal):
    """A lognormal think time: (mu, sigma) of ln(seconds), or two of mean / median / p90 / p99."""

    distribution: Literal["lognormal"]
    max_seconds: PositiveFloat | None = Field(None, description="Clip above.")


ThinkTime = Annotated[
    Union[FixedThink, UniformThink, ExponentialThink, LognormalThink], Field(discriminator="distribution")
]


def _number_or_distribution(value: Any) -> str:
    return "_distribution" if isinstance(value, (dict, BaseModel)) else "_number"


# A number of seconds, or a distribution written like the size distributions; the callable
# discriminator keeps pydantic's error on the branch the user meant (one clear line).
ThinkSeconds = Annotated[
    Union[Annotated[NonNegativeFloat, Tag("_number")], Annotated[ThinkTime, Tag("_distribution")]],
    Discriminator(_number_or_distribution),
]


class ClosedArrivals(_Section):
    """Closed loop: `users` clients, each sending its next request when its previous one completes
    (plus think time); the first wave of `users` requests starts at t = 0. Arrival times depend on
    the engine, so they are simulated, not drawn (vllm bench serve --max-concurrency)."""

    process: Literal["closed"]
    users: PositiveInt = Field(le=MAX_USERS, description="Concurrent users (clients).")
    think_time_seconds: ThinkSeconds = Field(
        0.0, description="Wait after each completion before the next request: seconds or a distribution."
    )


Arrivals = Annotated[
    Union[PoissonArrivals, GammaArrivals, OnOffArrivals, DiurnalArrivals, PiecewiseArrivals, TraceArrivals,
          ClosedArrivals],
    Field(discriminator="process"),
]


class FixedSizes(_Section):
    """Every request has the same prompt and output length."""

    distribution: Literal["fixed"]
    prompt_tokens: TokenCount
    output_tokens: TokenCount


class UniformSizes(_Section):
    """Integer lengths drawn uniformly from [lo, hi] (inclusive)."""

    distribution: Literal["uniform"]
    prompt_tokens: TokenRange
    output_tokens: TokenRange

    @field_validator("prompt_tokens", "output_tokens")
    @classmethod
    def _ordered(cls, value: list[int]) -> list[int]:
        if value[0] < 1 or value[1] < value[0]:
            raise ValueError("must be [lo, hi] with 1 <= lo <= hi")
        return value


class LognormalTokens(_Lognormal):
    """A lognormal length: (mu, sigma) of ln(tokens), or two of mean / median / p90 / p99."""

    min_tokens: TokenCount = Field(1, description="Floor after rounding.")
    max_tokens: TokenCount | None = Field(None, description="Clip above (max_model_len caps anyway).")

    @model_validator(mode="after")
    def _floor_below_clip(self) -> LognormalTokens:
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) is above max_tokens ({self.max_tokens}): swap them")
        return self


class LognormalSizes(_Section):
    """Independent lognormal prompt and output lengths, rounded to whole tokens."""

    distribution: Literal["lognormal"]
    prompt_tokens: LognormalTokens
    output_tokens: LognormalTokens


class EmpiricalSizes(_Section):
    """Resample request sizes from a trace file (with replacement)."""

    distribution: Literal["empirical"]
    path: TraceFile = Field(description="Trace file, relative to the profile file.")
    format: TraceFormat | None = None
    joint: bool = Field(True, description="Resample (prompt, output) pairs; false = each independently.")


class TraceSizes(_Section):
    """Take each replayed request's own sizes from the trace (needs arrivals.process: trace)."""

    distribution: Literal["trace"]


Sizes = Annotated[
    Union[FixedSizes, UniformSizes, LognormalSizes, EmpiricalSizes, TraceSizes],
    Field(discriminator="distribution"),
]


class TrafficSection(_Section):
    """Arrivals, request sizes and the simulated horizon."""

    arrivals: Arrivals
    sizes: Sizes | None = Field(None, description="None: the trace's own sizes (trace arrivals only).")
    horizon_seconds: PositiveFloat | None = Field(
        None,
        description="Simulated duration; None = 3600 for synthetic arrivals, the trace's span for a trace.",
    )
    oversize: Literal["cap", "keep"] | None = Field(
        None,
        description="Requests longer than max_model_len: cap (synthetic default) or keep for the "
        "simulator to reject (trace-size default).",
    )
    requests: Annotated[int, Field(gt=0, le=50_000_000)] | None = Field(
        None,
        description="Closed loop only: stop after this many requests (the horizon, when also set, "
        "may stop it earlier).",
    )
    seed: int = Field(0, ge=0, lt=2**63, description="Default random seed, >= 0 (the CLI's --seed overrides it).")

    @model_validator(mode="after")
    def _sizes_match_arrivals(self) -> TrafficSection:
        is_trace = isinstance(self.arrivals, TraceArrivals)
        if isinstance(self.arrivals, ClosedArrivals):
            if self.horizon_seconds is None and self.requests is None:
                raise ValueError(
                    "a closed loop (arrivals.process: closed) needs a bound: set horizon_seconds, requests, or both"
                )
        elif self.requests is not None:
            raise ValueError("requests applies to closed-loop arrivals only; bound open-loop traffic with horizon_seconds")
        if self.sizes is None and not is_trace:
            raise ValueError("sizes is required unless arrivals.process is trace")
        if isinstance(self.sizes, TraceSizes) and not is_trace:
            raise ValueError("sizes.distribution 'trace' needs arrivals.process 'trace'")
        return self

    @property
    def sizes_from_trace(self) -> bool:
        """True when request sizes come row by row from the replayed trace."""
        return self.sizes is None or isinstance(self.sizes, TraceSizes)

    @property
    def closed_loop(self) -> bool:
        """True when arrivals come from closed-loop users (simulated, not drawn up front)."""
        return isinstance(self.arrivals, ClosedArrivals)

    @property
    def default_horizon_seconds(self) -> float | None:
        """The horizon to simulate (None for a trace without one: its span decides; None for a
        closed loop bounded only by requests: the run's length decides)."""
        if self.horizon_seconds is not None:
            return self.horizon_seconds
        return None if isinstance(self.arrivals, (TraceArrivals, ClosedArrivals)) else 3600.0


