"""`planner calibrate` on simulator-made 'measured' runs (prints figures; not a test).

Makes four `vllm bench serve` result documents (planner.calibrate.synthetic.recovery_runs: a
prefill-heavy single user, 32 users on short prompts, 32 users on 16k-token prompts with long
outputs, bursty open arrivals at 6 req/s) for llama-3.1-8b on one h200, their latencies simulated
with known corrections (GEMM x1.25, attention x0.8, +3 ms per step) and 3% noise on every request
(written per request too, as --save-detailed does, so the interval is over files and requests),
then fits them back, for several seeds (seed s draws the lengths with s and the noise with 100 + s,
as tests/test_calibrate_fit.py does): how close the fit comes, how many seeds recover every
correction within 5%, the error before/after, and how long it takes on this machine.

Usage: python bench/calibrate_fit.py [--seeds N] [--noise 0.03] [--write-runs DIR]
  --write-runs DIR  also keep the first seed's result files in DIR (docs/calibrate.md's example:
                    planner calibrate DIR/*.json --gpu h200 --model llama-3.1-8b --max-model-len 32768)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from planner.calibrate.calibrate import CalibrationRequest, calibrate, setup_builder
from planner.inputs.bench_calibration import Corrections
from planner.calibrate.synthetic import measured, recovery_runs
from planner.inputs.catalog import get_gpu

TRUTH = Corrections(gemm_scale=1.25, attention_scale=0.8, step_overhead_s=0.003)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--write-runs", type=Path, default=None)
    args = parser.parse_args()
    request = CalibrationRequest(gpu="h200", model="llama-3.1-8b", serving={"max_model_len": 32768})
    _, build = setup_builder(request, get_gpu("h200"))
    truth_setup = build(TRUTH)
    print(f"true corrections: GEMM x{TRUTH.gemm_scale}, attention x{TRUTH.attention_scale}, "
          f"+{TRUTH.step_overhead_s * 1e3:g} ms/step; noise {args.noise:.0%} per request")
    print(f"{'seed':>4} {'gemm err':>9} {'attn err':>9} {'ovh err':>9} {'rms before':>10} {'rms after':>9} "
          f"{'LOFO':>6} {'evals':>5} {'wall s':>6}")
    worst = 0.0
    within = 0
    for seed in range(1, args.seeds + 1):
        rng = np.random.default_rng(seed)
        docs = recovery_runs(rng)
        noise_rng = np.random.default_rng(100 + seed)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for k, doc in enumerate(docs):
                path = Path(tmp) / f"run{k}.json"
                path.write_text(json.dumps(measured(doc, truth_setup, noise=args.noise, rng=noise_rng, detailed=True)))
                paths.append(path)
                if args.write_runs is not None and seed == 1:
                    args.write_runs.mkdir(parents=True, exist_ok=True)
                    (args.write_runs / path.name).write_text(path.read_text())
            t0 = time.perf_counter()
            result = calibrate(request, paths)
            wall = time.perf_counter() - t0
        c, fit = result.fit.corrections, result.fit
        errs = [c.gemm_scale / TRUTH.gemm_scale - 1, c.attention_scale / TRUTH.attention_scale - 1,
                c.step_overhead_s / TRUTH.step_overhead_s - 1]
        worst = max(worst, *map(abs, errs))
        within += max(map(abs, errs)) < 0.05
        print(f"{seed:>4} {errs[0]:>+9.1%} {errs[1]:>+9.1%} {errs[2]:>+9.1%} {fit.rms_error_before:>10.1%} "
              f"{fit.rms_error_after:>9.2%} {fit.rms_error_held_out or 0:>6.2%} {fit.solver_evaluations:>5} {wall:>6.1f}")
    print(f"every correction within 5% on {within} of {args.seeds} seeds; largest error of any correction: {worst:.1%}")


if __name__ == "__main__":
    main()
