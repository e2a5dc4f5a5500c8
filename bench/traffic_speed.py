"""How fast traffic is drawn and read: a million arrivals per process, and the shipped traces.

Run: python bench/traffic_speed.py   (prints one line per case; no assertions)
"""

from __future__ import annotations

import time

from planner.profile import TrafficSection
from planner.resources import data_dir
from planner.traffic import _read_trace_cached, generate_workload, read_trace, trace_stats

SIZES = {"distribution": "lognormal", "prompt_tokens": {"median": 1020, "p90": 2734},
         "output_tokens": {"median": 129, "p90": 424}}
# Each case draws about 1e6 requests.
CASES = {
    "poisson": ({"process": "poisson", "rate_per_s": 100.0}, 10_000),
    "gamma cv 4": ({"process": "gamma", "rate_per_s": 100.0, "cv": 4.0}, 10_000),
    "onoff": ({"process": "onoff", "base_rate_per_s": 50.0, "burst_rate_per_s": 400.0,
               "mean_burst_seconds": 60.0, "mean_gap_seconds": 300.0}, 9_600),
    "diurnal (sinusoid)": ({"process": "diurnal", "mean_rate_per_s": 11.574, "peak_to_trough": 6.0}, 86_400),
    "diurnal (hourly)": ({"process": "diurnal", "mean_rate_per_s": 11.574,
                          "hourly_multipliers": [1 + (h % 12) for h in range(24)]}, 86_400),
    "piecewise": ({"process": "piecewise", "segments": [{"duration_seconds": 60, "rate_per_s": 50},
                                                        {"duration_seconds": 60, "rate_per_s": 150}]}, 10_000),
}


def best_of(fn, repeat: int = 3) -> tuple[float, object]:  # noqa: ANN001
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    print(f"{'case':<44} {'requests':>10} {'seconds':>8} {'M req/s':>8}")
    for name, (arrivals, horizon) in CASES.items():
        section = TrafficSection.model_validate({"arrivals": arrivals, "sizes": SIZES, "horizon_seconds": horizon})
        secs, w = best_of(lambda: generate_workload(section, seed=0, max_model_len=8192))
        print(f"{'generate ' + name:<44} {len(w):>10,} {secs:>8.3f} {len(w) / secs / 1e6:>8.2f}")
    secs, stats = best_of(lambda: trace_stats(w))
    print(f"{'trace_stats (last case)':<44} {len(w):>10,} {secs:>8.3f} {len(w) / secs / 1e6:>8.2f}")
    traces = data_dir("traffic_profiles/traces")
    for path in sorted(traces.glob("*.csv")):
        def cold():  # noqa: ANN202
            _read_trace_cached.cache_clear()
            return read_trace(path)
        secs, t = best_of(cold)
        print(f"{'read ' + path.name + ' (uncached)':<44} {len(t):>10,} {secs:>8.3f} {len(t) / secs / 1e6:>8.2f}")


if __name__ == "__main__":
    main()
