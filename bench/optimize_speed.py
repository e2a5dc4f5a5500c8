"""How long `planner optimize --profile traffic_profiles/bursty.yaml` takes, cold and warm.

Cold: an empty capacity cache (every candidate's capacity is simulated, in a process pool).
Warm: the same run again (capacities from the cache; MILP, verification and alternatives rerun).
Each run is the real command in a fresh process, from a temporary working directory, so the
figures include interpreter start-up and imports. Prints the figures; asserts nothing.

    python bench/optimize_speed.py [--profile traffic_profiles/bursty.yaml] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(profile: Path, cache: Path, workdir: Path, workers: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-c", "from planner.cli import main; main()", "optimize", "--profile", str(profile), "--json",
           "--cache-dir", str(cache), "--workers", str(workers)]
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"planner optimize failed ({out.returncode}): {out.stderr.strip()}")
    return wall, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=str(ROOT / "traffic_profiles" / "bursty.yaml"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    profile = Path(args.profile).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    try:
        cold_s, cold = run(profile, tmp / "cache", tmp, args.workers)
        warm_s, warm = run(profile, tmp / "cache", tmp, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"profile      {profile.name} ({cold['verification']['num_requests']:,} requests, "
          f"{len(cold['capacities'])} candidate capacities, {args.workers} workers, {os.cpu_count()} CPUs)")
    for label, wall, res in (("cold cache", cold_s, cold), ("warm cache", warm_s, warm)):
        print(f"{label:<12} {wall:6.1f} s wall  (in-process {res['wall_seconds']:.1f} s: capacities "
              f"{res['capacity_seconds']:.1f} s, simulation {res['simulate_seconds']:.1f} s, "
              f"MILP {res['solve_seconds']:.2f} s)")
    plan = ", ".join(f"{e['count']} x {e['gpu']} {e['billing']}" for e in warm["plan"])
    print(f"plan         {plan}: "
          f"${warm['cost_per_month_usd']:,.2f}/month, SLO {warm['slo_attainment']:.1%}")
    print("targets      cold <= 60 s, warm <= 10 s on a 2-core machine")


if __name__ == "__main__":
    main()
