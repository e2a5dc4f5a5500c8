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

Modules: workload (`Workload`, stats), traces (readers), synthetic (arrival processes, sizes),
generation (a profile's traffic section to a `Workload`), closed_loop (closed-loop users: what
they send, drawn up front; when, simulated by planner.sim).
"""

from planner.traffic.closed_loop import (
    ClosedLoop,
    ClosedLoopStats,
    SizeList,
    closed_loop,
    closed_loop_stats,
    fixed_closed_loop,
    traffic_for_simulation,
)
from planner.traffic.generation import (
    describe_traffic,
    generate,
    generate_workload,
    hourly_counts,
    resolve_traffic,
)
from planner.traffic.synthetic import (
    MAX_REQUESTS,
    SyntheticArrivals,
    SyntheticSizes,
    arrival_times,
    cap_sizes,
    diurnal_rate_per_s,
    expected_requests,
    long_run_note,
    request_sizes,
)
from planner.traffic.traces import (
    _read_trace_cached,
    detect_format,
    read_trace,
)
from planner.traffic.workload import (
    TokenStats,
    TrafficStats,
    Workload,
    peak_window_count,
    trace_stats,
)
from planner.units import SECONDS_PER_MONTH

__all__ = [
    "SECONDS_PER_MONTH",
    "Workload",
    "TokenStats",
    "TrafficStats",
    "peak_window_count",
    "trace_stats",
    "detect_format",
    "_read_trace_cached",
    "read_trace",
    "SyntheticArrivals",
    "SyntheticSizes",
    "diurnal_rate_per_s",
    "MAX_REQUESTS",
    "long_run_note",
    "expected_requests",
    "arrival_times",
    "request_sizes",
    "cap_sizes",
    "generate_workload",
    "generate",
    "hourly_counts",
    "describe_traffic",
    "resolve_traffic",
    "ClosedLoop",
    "ClosedLoopStats",
    "SizeList",
    "closed_loop",
    "closed_loop_stats",
    "fixed_closed_loop",
    "traffic_for_simulation",
]
