"""A profile's traffic section to a `Workload`: synthetic generation or trace replay, and its description."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from planner.errors import PlannerError
from planner.inputs.profile import (
    ClosedArrivals,
    Profile,
    TraceArrivals,
    TrafficSection,
)
from planner.traffic.synthetic import MAX_REQUESTS, arrival_times, cap_sizes, request_sizes
from planner.traffic.traces import read_trace
from planner.traffic.workload import TrafficStats, Workload, trace_stats


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
        if len(t) * f > MAX_REQUESTS:
            raise PlannerError(
                f"traffic.arrivals.rate_scale: {f:g} x {len(t):,} trace requests is more than the limit of "
                f"{MAX_REQUESTS:,}; lower it"
            )
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
        if laps * len(t) > MAX_REQUESTS:
            raise PlannerError(
                f"traffic.horizon_seconds: looping the trace {laps:,} times is more than the limit of "
                f"{MAX_REQUESTS:,} requests; shorten the horizon"
            )
        t = (t[None, :] + period * np.arange(laps)[:, None]).ravel()
        rows = np.tile(rows, laps)
    keep = t < horizon_s
    return t[keep], rows[keep], horizon_s


# ---------------------------------------------------------------------------------- generation
def _describe(traffic: TrafficSection, seed: int) -> str:
    a = traffic.arrivals
    params = ", ".join(f"{k}={v}" for k, v in a.model_dump(exclude={"process", "path"}).items() if v is not None)
    what = f"{a.process}({params})" if not isinstance(a, TraceArrivals) else f"trace {Path(a.path).name} ({params})"
    sizes = "trace sizes" if traffic.sizes_from_trace else f"{traffic.sizes.distribution} sizes"  # type: ignore[union-attr]
    return f"{what}; {sizes}; seed {seed}"


def resolve_traffic(
    source: Profile | TrafficSection, seed: int | None, max_model_len: int | None
) -> tuple[TrafficSection, int, int | None]:
    """(traffic section, seed, max_model_len cap) of a Profile or a bare TrafficSection: seed None =
    traffic.seed; max_model_len None = the profile's serving.max_model_len (a section: no cap)."""
    if isinstance(source, Profile):
        traffic = source.traffic
        if max_model_len is None:
            max_model_len = source.serving.max_model_len
    else:
        traffic = source
    seed = traffic.seed if seed is None else int(seed)
    if seed < 0:
        raise PlannerError(f"seed must be a non-negative integer (got {seed})")
    return traffic, seed, max_model_len


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
    traffic, seed, max_model_len = resolve_traffic(source, seed, max_model_len)
    if isinstance(traffic.arrivals, ClosedArrivals):
        raise PlannerError(
            "closed-loop traffic (arrivals.process: closed) has no arrival times before it is simulated; "
            "use planner.traffic.closed_loop(profile) and planner.sim.simulate"
        )
    arrivals_ss, sizes_ss = np.random.SeedSequence(seed).spawn(2)
    rng_arrivals, rng_sizes = np.random.default_rng(arrivals_ss), np.random.default_rng(sizes_ss)

    if isinstance(traffic.arrivals, TraceArrivals):
        t, rows, horizon = _replay(traffic.arrivals, traffic.horizon_seconds, rng_arrivals)
    else:
        horizon = float(traffic.default_horizon_seconds)  # type: ignore[arg-type]
        t, rows = arrival_times(traffic.arrivals, horizon, rng_arrivals), None
    if len(t) == 0:
        later = " (the replayed trace, after start_offset_seconds, jitter and time_scale, starts later)"
        raise PlannerError(
            f"traffic.horizon_seconds: no request arrives in {horizon:.3g} s"
            f"{later if isinstance(traffic.arrivals, TraceArrivals) else ''}; lengthen the horizon or raise the rate"
        )

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
        if profile.traffic.closed_loop:
            raise PlannerError("a closed loop has no arrivals to describe before simulation; use closed_loop_stats")
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
